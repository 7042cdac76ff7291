package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.assertEvent;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.randomBytes;
import static io.github.gracefultls.TlsCloseInitiator.LOCAL;
import static io.github.gracefultls.TlsCloseInitiator.PEER;
import static io.github.gracefultls.TlsCloseStatus.CLOSE_NOTIFY_RECEIVED;
import static io.github.gracefultls.TlsCloseStatus.FAILED;
import static io.github.gracefultls.TlsCloseStatus.TRUNCATED;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatNullPointerException;

/**
 * {@link GracefulTlsCloseHandler#abort(Throwable)}: the connection ends at once without {@code close_notify}, the
 * outcome is FAILED with the given cause, and the peer sees a truncation, never a clean end.
 */
class AbortPairTest {

    private static final byte[] PAYLOAD = randomBytes(2_000, 21);

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void anAbortEndsWithoutCloseNotifyAndThePeerSeesATruncation(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(),
                new GracefulTlsCloseHandler()).handshake()) {
            f.client().writeAndFlush(buf(f.client(), PAYLOAD));
            IOException cause = new IOException("upstream response cut short");

            Future<TlsCloseEvent> aborted = f.clientHandler().abort(cause);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, FAILED, LOCAL, null);
            assertThat(event.cause()).isSameAs(cause);
            assertThat(aborted.getNow()).isSameAs(event);
            assertThat(f.client().isOpen()).isFalse();

            // What was flushed before the abort arrives; no close_notify follows it.
            f.pair.forward(Side.CLIENT);
            assertThat(f.pair.hasPendingOutbound(Side.CLIENT)).isFalse();
            f.server().pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
            f.server().runPendingTasks();
            TlsCloseEvent peer = assertOneEventBeforeInactive(f.serverApp());
            assertEvent(peer, TRUNCATED, PEER, null);
            assertThat(f.serverApp().receivedBytes()).isEqualTo(PAYLOAD);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void anAbortDuringTheWaitForThePeersCloseNotifyDecidesTheOutcome(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), null).handshake()) {
            f.client().close(); // our close_notify goes out; the wait begins
            f.pair.drainOutbound(Side.CLIENT); // and never arrives
            IllegalStateException cause = new IllegalStateException("gave up");

            Future<TlsCloseEvent> aborted = f.clientHandler().abort(cause);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, FAILED, LOCAL, TlsCloseMode.SHUT_RDWR);
            assertThat(event.cause()).isSameAs(cause);
            assertThat(aborted.getNow()).isSameAs(event);
            assertThat(f.client().isOpen()).isFalse();
            f.pair.advanceTimeBy(1, TimeUnit.HOURS); // no timer left to fire a second outcome
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void anAbortAfterTheOutcomeReturnsItAndChangesNothing(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            f.client().close();
            f.pair.pump();
            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertThat(event.status()).isEqualTo(CLOSE_NOTIFY_RECEIVED);

            assertThat(f.clientHandler().abort(new IOException("late")).getNow()).isSameAs(event);
            assertOneEventBeforeInactive(f.clientApp());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void anAbortBeforeTheHandshakeResetsAndFailsItsFuture(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), null)) {
            f.handlerRemovedBeforeAnyClosure(); // no handshake: no event may come
            IOException cause = new IOException("no");

            Future<TlsCloseEvent> aborted = f.clientHandler().abort(cause);

            assertThat(aborted.cause()).isInstanceOf(IllegalStateException.class).hasCause(cause)
                    .hasMessage("abort() called before the TLS handshake succeeded: the connection was reset, and "
                            + "there is no TLS closure to report");
            assertThat(f.client().isOpen()).isFalse();
        }
    }

    @Test
    void anAbortNeedsACauseAndAPipeline() {
        GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        assertThatNullPointerException().isThrownBy(() -> handler.abort(null)).withMessage("cause");
        assertThat(handler.abort(new IOException("x")).cause()).isInstanceOf(IllegalStateException.class)
                .hasMessage("abort() called on a GracefulTlsCloseHandler that is not in a pipeline");
    }
}
