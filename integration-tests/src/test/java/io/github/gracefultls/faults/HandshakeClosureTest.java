package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Closure attempted at every step of the handshake (after each flight moved, one at a time, client first), by every
 * operation, on either side: before the handshake succeeded on that side, {@code close()} passes straight through
 * without an event and {@code bye}/{@code shutdownOutput} fail with {@link IllegalStateException}; after it, exactly
 * one event. Nothing hangs, nothing leaks.
 */
class HandshakeClosureTest {

    enum Call { CLOSE, BYE_RDWR, BYE_WR, SHUTDOWN_OUTPUT }

    static Stream<Arguments> cases() {
        return Tls.providersAndProtocols().flatMap(a -> Stream.of(Call.values()).flatMap(c -> Stream.of(Side.values())
                .map(s -> Arguments.of(a.get()[0], a.get()[1], c, s))));
    }

    @ParameterizedTest(name = "{0} {1} {2} on {3}")
    @MethodSource("cases")
    void closureAtEveryHandshakeStep(SslProvider provider, String protocol, Call call, Side side) {
        for (int step = 0; step < 8; step++) {
            RecordingHandler clientRec = RecordingHandler.swallowingExceptions();
            RecordingHandler serverRec = RecordingHandler.swallowingExceptions();
            GracefulTlsCloseHandler client = new GracefulTlsCloseHandler();
            GracefulTlsCloseHandler server = new GracefulTlsCloseHandler();
            try (TlsPair pair = TlsPair.builder(provider, protocol)
                    .client(p -> p.addLast(client, clientRec))
                    .server(p -> p.addLast(server, serverRec))
                    .build()) {
                pair.freezeTime();
                Side from = Side.CLIENT;
                for (int i = 0; i < step; i++) {
                    pair.runPendingTasks();
                    pair.forward(from);
                    from = from.peer();
                }
                GracefulTlsCloseHandler h = side == Side.CLIENT ? client : server;
                boolean handshaken = pair.sslHandler(side).handshakeFuture().isSuccess();
                Future<?> f;
                switch (call) {
                    case CLOSE:
                        f = pair.channel(side).pipeline().close();
                        break;
                    case BYE_RDWR:
                        f = h.bye(TlsCloseMode.SHUT_RDWR);
                        break;
                    case BYE_WR:
                        f = h.bye(TlsCloseMode.SHUT_WR);
                        break;
                    default:
                        f = h.shutdownOutput();
                        break;
                }
                String where = "step " + step + " (handshaken: " + handshaken + ")";
                if (!handshaken && call != Call.CLOSE) {
                    assertThat(f.isDone()).as(where).isTrue();
                    assertThat(f.cause()).as(where).isInstanceOf(IllegalStateException.class);
                }
                // Let everything play out: both sides talk, time runs past every deadline, then both close.
                for (int round = 0; round < 4; round++) {
                    pair.pump();
                    pair.advanceTimeBy(5, TimeUnit.SECONDS);
                }
                pair.client().pipeline().close();
                pair.server().pipeline().close();
                for (int round = 0; round < 4; round++) {
                    pair.pump();
                    pair.advanceTimeBy(5, TimeUnit.SECONDS);
                }
                assertThat(f.isDone()).as(where + ": the call's future completed").isTrue();
                for (Side s : Side.values()) {
                    RecordingHandler rec = s == Side.CLIENT ? clientRec : serverRec;
                    GracefulTlsCloseHandler hs = s == Side.CLIENT ? client : server;
                    boolean ok = pair.sslHandler(s).handshakeFuture().isSuccess();
                    assertThat(rec.eventsOfType(TlsCloseEvent.class)).as(where + " " + s).hasSize(ok ? 1 : 0);
                    assertThat(hs.closeFuture().isDone()).as(where + " " + s + " closeFuture done").isTrue();
                    assertThat(pair.channel(s).isOpen()).as(where + " " + s + " open").isFalse();
                }
                if (handshaken) {
                    assertThat(rec(side, clientRec, serverRec).eventsOfType(TlsCloseEvent.class)).hasSize(1);
                }
            }
        }
    }

    private static RecordingHandler rec(Side side, RecordingHandler c, RecordingHandler s) {
        return side == Side.CLIENT ? c : s;
    }
}
