package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.github.gracefultls.PairTestSupport.handlerOf;
import static io.github.gracefultls.PairTestSupport.pairWithHandlers;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * SPEC "Results": the futures fail only when the call itself is invalid: before the handshake has succeeded, or on a
 * handler that is not (or no longer) in a pipeline; such a call starts nothing and leaves the channel alone.
 */
class InvalidCallTest {

    private static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeFutureFailsWhenTheHandshakeFails(SslProvider provider, String protocol) {
        // Each side speaks only the other protocol: the handshake fails.
        String other = Tls.TLS_1_2.equals(protocol) ? Tls.TLS_1_3 : Tls.TLS_1_2;
        try (TlsPair pair = TlsPair.builder(Tls.clientContext(provider, protocol), Tls.serverContext(provider, other))
                .clientHandlers(new GracefulTlsCloseHandler(), RecordingHandler.swallowingExceptions())
                .serverHandlers(new GracefulTlsCloseHandler(), RecordingHandler.swallowingExceptions())
                .build()) {
            GracefulTlsCloseHandler handler = handlerOf(pair.client());
            Future<TlsCloseEvent> early = handler.closeFuture();

            pair.pump();

            assertThat(pair.clientSsl().handshakeFuture().isSuccess()).isFalse();
            assertThat(pair.clientSsl().handshakeFuture().isDone()).isTrue();
            for (Future<TlsCloseEvent> f : List.of(early, handler.closeFuture(), handler.bye(TlsCloseMode.SHUT_RDWR))) {
                assertThat(f.isDone()).isTrue();
                assertThat(f.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("handshake");
            }
            assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).isEmpty();
            assertThat(pair.serverRecorder().eventsOfType(TlsCloseEvent.class)).isEmpty();
        }
    }

    @Test
    void byeAndShutdownOutputOnAHandlerNeverAddedFail() {
        GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        for (Future<TlsCloseEvent> f : List.of(handler.bye(TlsCloseMode.SHUT_RDWR), handler.bye(TlsCloseMode.SHUT_WR),
                handler.shutdownOutput())) {
            assertThat(f.isDone()).isTrue();
            assertThat(f.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("pipeline");
        }
    }

    /**
     * A handler the application removed from its pipeline is "not in any pipeline" as much as one never added: the
     * call is invalid and must neither start a closure nor touch the channel it once belonged to.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeOnARemovedHandlerFailsAndLeavesTheChannelAlone(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            pair.freezeTime();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handlerOf(client);
            client.pipeline().remove(handler);

            Future<TlsCloseEvent> bye = handler.bye(TlsCloseMode.SHUT_RDWR);

            SoftAssertions softly = new SoftAssertions();
            softly.assertThat(bye.isDone()).as("bye() future done at once").isTrue();
            softly.assertThat(bye.cause()).as("bye() failure").isInstanceOf(IllegalStateException.class);
            softly.assertThat(pair.pendingOutboundBytes(Side.CLIENT)).as("bytes (a close_notify) sent").isZero();
            softly.assertThat(client.runScheduledPendingTasks()).as("timer scheduled").isEqualTo(-1);
            pair.advanceTimeBy(1, TimeUnit.HOURS);
            softly.assertThat(client.isOpen()).as("channel still open an hour later").isTrue();
            softly.assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).as("TlsCloseEvents").isEmpty();
            softly.assertAll();
        }
    }

    @Test
    void staticShutdownOutputWithoutTheHandlerFails() {
        EmbeddedChannel ch = new EmbeddedChannel(new RecordingHandler());
        try {
            Future<TlsCloseEvent> f = GracefulTlsCloseHandler.shutdownOutput(ch);
            assertThat(f.isDone()).isTrue();
            assertThat(f.cause()).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(GracefulTlsCloseHandler.class.getSimpleName());
            assertThat(ch.isOpen()).isTrue();
        } finally {
            ch.finishAndReleaseAll();
        }
    }
}
