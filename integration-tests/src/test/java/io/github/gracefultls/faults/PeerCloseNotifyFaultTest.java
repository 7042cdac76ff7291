package io.github.gracefultls.faults;

import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.Transport;
import io.netty.buffer.Unpooled;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The SPEC's {@code CLOSE_NOTIFY_RECEIVED} row against odd peers: garbage after the peer's close_notify, a fatal
 * alert instead of it, close_notify in the same segment as data, a second close_notify; against {@code close()},
 * {@code bye(SHUT_RDWR)}, {@code shutdownOutput()} and a closure the peer begins.
 */
class PeerCloseNotifyFaultTest extends FaultPeerTestBase {

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("allOps")
    void garbageAfterCloseNotifyDoesNotUndoTheCleanClosure(Transport transport, SslProvider provider,
                                                           String protocol, Op op) throws Exception {
        byte[] garbage = "\u0000\u00ffGARBAGE-GARBAGE-GARBAGE".getBytes(StandardCharsets.ISO_8859_1);
        TlsCloseEvent event = peerActs(transport, provider, protocol, op,
                (wire, peer) -> peer.ssl().closeOutbound().addListener(x -> wire.writeRaw(garbage)));
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("allOps")
    void fatalAlertInsteadOfCloseNotifyIsNotClean(Transport transport, SslProvider provider, String protocol,
                                                  Op op) throws Exception {
        // A plaintext fatal handshake_failure alert where an encrypted close_notify belongs.
        byte[] alert = {21, 3, 3, 0, 2, 2, 40};
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> wire.writeRaw(alert));
        assertThat(event.status()).as("%s", event).isNotEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        assertThat(event.isClean()).isFalse();
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("allOps")
    void closeNotifyInTheSameSegmentAsDataIsClean(Transport transport, SslProvider provider, String protocol,
                                                  Op op) throws Exception {
        byte[] data = TlsSockets.payload(1000);
        Setup[] setup = new Setup[1];
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> {
            wire.cork();
            peer.channel().writeAndFlush(Unpooled.wrappedBuffer(data));
            peer.ssl().closeOutbound();
            peer.channel().eventLoop().execute(wire::uncork);
        }, s -> setup[0] = s);
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
        List<Object> timeline = setup[0].client.rec.timeline();
        long deliveredBeforeEvent = timeline.subList(0, timeline.indexOf(event)).stream()
                .filter(RecordingHandler.Read.class::isInstance)
                .mapToLong(r -> ((RecordingHandler.Read) r).bytes().length).sum();
        if (op == Op.CLOSE || op == Op.BYE_RDWR) {
            assertThat(event.discardedBytes()).as("SHUT_RDWR releases the data: %s", event).isEqualTo(data.length);
            assertThat(deliveredBeforeEvent).isEqualTo(4); // the ping only
        } else {
            assertThat(deliveredBeforeEvent).as("the data, whole, before the event").isEqualTo(4 + data.length);
            assertThat(event.discardedBytes()).isZero();
        }
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("allOps")
    void aSecondCloseNotifyChangesNothing(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> {
            wire.cork();
            peer.ssl().closeOutbound();
            peer.channel().eventLoop().execute(wire::uncorkTwice);
        });
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
    }
}
