package io.github.gracefultls.faults;

import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.Transport;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The SPEC's {@code TRUNCATED} (operation 6, the transport ends first): a FIN at a record boundary and inside a
 * record, a reset before, during or after our close_notify, against {@code close()}, {@code bye(SHUT_RDWR)},
 * {@code shutdownOutput()} and, where it applies, a closure the peer begins.
 */
class TruncatingPeerTest extends FaultPeerTestBase {

    // ---- FIN

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("allOps")
    void finAtRecordBoundaryIsTruncated(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> wire.fin());
        assertStatus(event, TlsCloseStatus.TRUNCATED, initiator(op));
        assertThat(event.cause()).isInstanceOf(TlsTruncationException.class);
        assertThat(((TlsTruncationException) event.cause()).isInsideRecord()).isFalse();
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("allOps")
    void finInsideRecordIsTruncatedInsideRecord(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        // A record header announcing 64 bytes, and 5 of them, then FIN.
        byte[] partial = {23, 3, 3, 0, 64, 1, 2, 3, 4, 5};
        TlsCloseEvent event = peerActs(transport, provider, protocol, op,
                (wire, peer) -> wire.writeRaw(partial).addListener(x -> wire.fin()));
        assertStatus(event, TlsCloseStatus.TRUNCATED, initiator(op));
        assertThat(event.cause()).isInstanceOf(TlsTruncationException.class);
        assertThat(((TlsTruncationException) event.cause()).isInsideRecord()).as("%s", event.cause()).isTrue();
    }

    // ---- RST

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("allOps")
    void resetBeforeOrDuringOurCloseNotifyIsTruncated(Transport transport, SslProvider provider, String protocol,
                                                      Op op) throws Exception {
        // PEER: the reset comes before any close_notify; local ops: the reset answers our close_notify.
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> wire.reset());
        assertStatus(event, TlsCloseStatus.TRUNCATED, initiator(op));
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void resetAfterOurCloseNotifyIsCleanOnlyIfThePeersCloseNotifyCame(Transport transport, SslProvider provider,
                                                                       String protocol, Op op) throws Exception {
        Setup s = setup(transport, provider, protocol, answerDeadlines(), null);
        SslHandler peerSsl = s.peerChannel.pipeline().get(SslHandler.class);
        boolean[] peerSentCloseNotify = new boolean[1];
        peerSsl.sslCloseFuture().addListener(x -> {
            // The peer's engine has read our close_notify (and replied to it, if it does): reset right after.
            peerSentCloseNotify[0] = peerSsl.engine().isOutboundDone();
            s.peerChannel.eventLoop().execute(s.peer.wire::reset);
        });
        Future<TlsCloseEvent> f = op.start(s.client);
        TlsCloseEvent event = assertInvariants(s.client, f, op, true);
        boolean sent = FaultRig.onEventLoop(s.peerChannel, () -> peerSentCloseNotify[0]);
        if (!sent) {
            assertStatus(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.LOCAL);
        } else {
            assertThat(event.status()).as("%s", event)
                    .isIn(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseStatus.TRUNCATED);
        }
        assertChannelState(s.client, op, event);
    }
}
