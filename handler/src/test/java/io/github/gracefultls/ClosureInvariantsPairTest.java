package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.channel.ChannelFuture;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.List;

import static io.github.gracefultls.PairTestSupport.buffer;
import static io.github.gracefultls.PairTestSupport.handlerOf;
import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static io.github.gracefultls.PairTestSupport.pairWithHandlers;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * SPEC "Invariants" between two {@code EmbeddedChannel}s: a {@code close()} after a {@code bye(SHUT_WR)} joins it, and
 * exactly one event per channel, fired before {@code channelInactive}, which {@code closeFuture()} still gives after the
 * fact.
 */
class ClosureInvariantsPairTest {

    private static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeAfterByeShutWrJoinsAndDiscards(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handlerOf(client);

            Future<TlsCloseEvent> bye = handler.bye(TlsCloseMode.SHUT_WR);
            ChannelFuture closed = client.close();
            // Application data sent by the server before it sees our close_notify: discarded under SHUT_RDWR now.
            pair.server().writeAndFlush(buffer(pair.server(), "abc"));
            pair.forward(Side.SERVER);
            pair.pump();

            assertThat(bye.isSuccess()).isTrue();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(client.isOpen()).isFalse();
            TlsCloseEvent event = onlyEvent(pair.clientRecorder());
            assertThat(bye.getNow()).isSameAs(event);
            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(event.mode()).isEqualTo(TlsCloseMode.SHUT_WR);
            assertThat(event.discardedBytes()).isEqualTo(3);
            assertThat(pair.clientRecorder().receivedBytes()).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void exactlyOneEventAndCloseFutureAfterTheFact(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            GracefulTlsCloseHandler[] handlers = {handlerOf(pair.client()), handlerOf(pair.server())};
            pair.client().close();
            pair.pump();
            assertThat(pair.client().isOpen()).isFalse();
            assertThat(pair.server().isOpen()).isFalse();

            for (Side side : Side.values()) {
                TlsCloseEvent event = onlyEvent(pair.recorder(side));
                Future<TlsCloseEvent> after = handlers[side.ordinal()].closeFuture();
                assertThat(after.isSuccess()).as(side + " closeFuture() after the fact").isTrue();
                assertThat(after.getNow()).isSameAs(event);
                // Before channelInactive reached the application.
                List<Object> events = pair.recorder(side).events();
                assertThat(events.indexOf(event))
                        .isLessThan(events.indexOf(RecordingHandler.Marker.CHANNEL_INACTIVE));
                assertThat(events).containsOnlyOnce(RecordingHandler.Marker.CHANNEL_INACTIVE);
            }
            assertThat(onlyEvent(pair.clientRecorder()).initiator()).isEqualTo(TlsCloseInitiator.LOCAL);
            assertThat(onlyEvent(pair.serverRecorder()).initiator()).isEqualTo(TlsCloseInitiator.PEER);
        }
    }

    /**
     * The relay's abort of a channel whose handshake has not succeeded resets the transport below the SslHandler: no
     * alert and no close_notify go out before the reset.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void abortBeforeTheHandshakeSendsNothing(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            EmbeddedChannel client = pair.client();
            assertThat(pair.drainOutbound(Side.CLIENT)).as("the ClientHello").isNotEmpty();

            handlerOf(client).abort(new IOException("aborted before the handshake"));
            client.runPendingTasks();

            assertThat(client.isOpen()).isFalse();
            assertThat(pair.drainOutbound(Side.CLIENT)).as("bytes after the abort").isEmpty();
            assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).isEmpty();
        }
    }
}
