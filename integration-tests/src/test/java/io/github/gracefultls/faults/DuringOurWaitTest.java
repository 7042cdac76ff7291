package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsRecords;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Transport;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;

import static io.github.gracefultls.faults.FaultRig.AWAIT_SECONDS;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * What travels around our close_notify (SPEC operation 1): TLS 1.3 post-handshake messages that arrive during our
 * wait (NewSessionTicket, KeyUpdate with update_requested) leave the closure clean, and we send nothing after our
 * close_notify; 64 MiB written before {@code close()} arrive whole (SHA-256) before it. The peer answers in every
 * case, so our deadlines are ones no case reaches.
 */
class DuringOurWaitTest extends FaultPeerTestBase {

    // ---- TLS 1.3 post-handshake messages

    /**
     * No application data is exchanged before our close, so a BoringSSL TLS 1.3 server's NewSessionTicket records,
     * deferred to its first write, arrive during our wait, just before its close_notify. We send one record after
     * the handshake: our close_notify, nothing after it.
     */
    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("nioTls13")
    void newSessionTicketsDuringOurWaitAreClean(Transport transport, SslProvider provider, String protocol)
            throws Exception {
        rig = new FaultRig(transport, 2);
        Peer peer = rig.startPeer(provider, protocol, new GracefulTlsCloseHandler(), null);
        int[] rawAtHandshake = new int[1];
        Client client = rig.connect(provider, protocol, peer.address(), answerDeadlines(), null);
        Channel peerChannel = peer.awaitHandshake();
        rawAtHandshake[0] = FaultRig.onEventLoop(peerChannel, () -> peer.wire.rawIn().length);

        Future<TlsCloseEvent> f = Op.CLOSE.start(client);
        TlsCloseEvent event = assertInvariants(client, f, Op.CLOSE, false);
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        peer.rec.awaitCondition(r -> r.isInactive(), Duration.ofSeconds(AWAIT_SECONDS), "peer inactive");
        byte[] raw = peer.wire.rawIn();
        byte[] after = Arrays.copyOfRange(raw, rawAtHandshake[0], raw.length);
        List<TlsRecords.Record> records = TlsRecords.parse(after);
        assertThat(records).as("our records after the handshake").hasSize(1);
        assertThat(records.get(0).type()).as("%s", records).isEqualTo(TlsRecords.APPLICATION_DATA);
    }

    /** NIO, both providers, TLS 1.3 only (KeyUpdate exists only there), every op. */
    static Stream<Arguments> nioTls13Ops() {
        return allOps().filter(a -> a.get()[0] == Transport.NIO && Tls.TLS_1_3.equals(a.get()[2]));
    }

    /**
     * KeyUpdate during the shutdown (BoringSSL's shutdown cases), TLS 1.3 only: KeyUpdate exists only there. A JDK
     * TLS 1.3 peer begins a post-handshake exchange ({@code SSLEngine.beginHandshake()} on a TLS 1.3 session queues
     * a KeyUpdate with update_requested), sends one byte of data (which carries the KeyUpdate out first), then its
     * close_notify: for a local op once our close_notify reaches its wire (its TLS never reads it), for {@link
     * Op#PEER} at once, with no closure of ours under way. The peer encrypts the byte with its new key, so that our
     * engine reads it only once it has taken the KeyUpdate in. Every op ends cleanly. The byte is discarded and counted
     * under SHUT_RDWR ({@code close()}, {@code bye(SHUT_RDWR)}), delivered under SHUT_WR ({@code shutdownOutput()})
     * and when the peer begins. After our close_notify we send nothing: no KeyUpdate answer, no alert (after {@code
     * shutdownOutput()} the TCP output is shut down as well, and nothing fails for it). When the peer begins, we
     * answer its KeyUpdate as each provider does, then our close_notify (see {@link #assertOurRecordsAfterTheirs}).
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("nioTls13Ops")
    void keyUpdateDuringTheClosureIsCleanAndNothingFollowsOurCloseNotify(Transport transport, SslProvider provider,
                                                                        String protocol, Op op) throws Exception {
        peerProvider = SslProvider.JDK;
        byte[] data = {'u'};
        Setup[] setup = new Setup[1];
        PeerMark[] mark = new PeerMark[1];
        String[] status = new String[1];
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> {
            SSLEngine engine = peer.ssl().engine();
            try {
                engine.beginHandshake();
                status[0] = String.valueOf(engine.getHandshakeStatus());
            } catch (SSLException e) {
                status[0] = e.toString();
            }
            peer.channel().writeAndFlush(Unpooled.wrappedBuffer(data));
            peer.ssl().closeOutbound();
        }, s -> {
            setup[0] = s;
            mark[0] = PeerMark.of(s);
        });
        Setup s = setup[0];
        assertThat(FaultRig.onEventLoop(s.peerChannel, () -> status[0])).as("KeyUpdate queued")
                .isEqualTo("NEED_WRAP");
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
        assertData(s, op, event, data);

        List<TlsRecords.Record> records = mark[0].ourRecordsSince(op, event);
        if (op == Op.PEER) {
            assertOurRecordsAfterTheirs(provider, s.peer, records, mark[0].peerReadOurKeyUpdate());
        } else {
            assertThat(records).as("records we sent once our closure began: our close_notify alone").hasSize(1);
        }
    }

    /**
     * A KeyUpdate with update_requested after the peer's close_notify, TLS 1.3 only: records after a close_notify are
     * not TLS any more (RFC 8446 §6.1), so it must not matter. A JDK peer's engine builds both records, the
     * close_notify first ({@link JdkRecordLayer}: no engine writes after its close_notify), and the peer sends them in
     * one write below its {@code SslHandler}: for a local op once our close_notify reaches its wire, for {@link
     * Op#PEER} at once. Every op ends cleanly, nothing counted as discarded (the record is no application data of the
     * session), and we send no KeyUpdate answer: our close_notify alone, for every op. The record itself is dropped
     * with the rest of the session, except after a clean {@code bye(SHUT_RDWR)}: there, as the SPEC says of every byte
     * after the peer's close_notify, it reaches the application unread, as plaintext of the reused transport (on both
     * providers, measured here); a peer that reuses the transport sends the next protocol's bytes there, not TLS.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("nioTls13Ops")
    void keyUpdateAfterThePeersCloseNotifyIsNotTls(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        peerProvider = SslProvider.JDK;
        Setup[] setup = new Setup[1];
        PeerMark[] mark = new PeerMark[1];
        List<List<TlsRecords.Record>> sent = new ArrayList<>();
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> {
            SSLEngine engine = peer.ssl().engine();
            JdkRecordLayer.queueWarningAlert(engine, JdkRecordLayer.CLOSE_NOTIFY);
            JdkRecordLayer.queueKeyUpdateRequest(engine);
            try {
                byte[] bytes = JdkRecordLayer.drain(engine);
                sent.add(TlsRecords.parse(bytes));
                wire.writeRaw(bytes);
            } catch (SSLException e) {
                throw new AssertionError(e);
            }
        }, s -> {
            setup[0] = s;
            mark[0] = PeerMark.of(s);
        });
        Setup s = setup[0];
        // Sent by the test thread's act on the peer's loop, done before our closure could end.
        List<TlsRecords.Record> theirs = FaultRig.onEventLoop(s.peerChannel, () -> sent.get(0));
        assertThat(theirs).as("the peer's records: close_notify, KeyUpdate").extracting(TlsRecords.Record::length)
                .containsExactly(2 + 1 + 16 + 16, 5 + 1 + 16 + 16);
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
        assertThat(event.discardedBytes()).as("%s", event).isZero();
        byte[] received = s.client.rec.receivedBytes();
        byte[] afterPing = Arrays.copyOfRange(received, 4, received.length);
        if (keepsTransport(op, event)) {
            // The SPEC's transport reuse: what follows the close_notify is the next protocol's, passed on unread.
            assertThat(afterPing).as("the plaintext after the bye: the KeyUpdate record, as it came")
                    .isEqualTo(TlsRecords.encode(theirs.get(1)));
            List<Object> timeline = s.client.rec.timeline();
            assertThat(timeline.subList(0, timeline.indexOf(event)).stream()
                    .filter(RecordingHandler.Read.class::isInstance)).as("reads before the event: the ping").hasSize(1);
        } else {
            assertThat(afterPing).as("delivered after the ping").isEmpty();
        }

        List<TlsRecords.Record> ours = mark[0].ourRecordsSince(op, event);
        assertThat(ours).as("records we sent: our close_notify alone").hasSize(1);
        if (op == Op.PEER) {
            assertThat(mark[0].peerReadOurKeyUpdate()).as("the peer's engine read a KeyUpdate of ours").isFalse();
        }
    }

    /**
     * What we send when the peer begins with KeyUpdate(update_requested), data and its close_notify, measured here:
     * both providers answer the KeyUpdate (update_not_requested) first, then send our close_notify, two records.
     * Each engine produces its answer while reading the KeyUpdate, and {@code SslHandler} wraps what an engine has
     * to send after a read, so the answer leaves before the close_notify (on JDK TLS 1.3 ours, on BoringSSL the one
     * it replies by itself, see the SPEC's table). The peer's engine reads the first record as a KeyUpdate (its read
     * cipher changes) and the second as a close_notify. Their lengths: each record's body is a {@code
     * TLSInnerPlaintext} (content, one content-type byte, padding) and a 16-byte AEAD tag; a KeyUpdate is 5 bytes (4
     * of handshake header, request_update), a close_notify 2 (level, description); the JDK pads these records with 16
     * zero bytes, BoringSSL does not pad.
     */
    private static void assertOurRecordsAfterTheirs(SslProvider provider, Peer peer, List<TlsRecords.Record> records,
                                                    boolean peerReadOurKeyUpdate) throws Exception {
        int padding = provider == SslProvider.JDK ? 16 : 0;
        int keyUpdate = 5 + 1 + padding + 16;
        int closeNotify = 2 + 1 + padding + 16;
        assertThat(records).as("records we sent after the peer began").extracting(TlsRecords.Record::length)
                .containsExactly(keyUpdate, closeNotify);
        assertThat(peerReadOurKeyUpdate).as("the peer's engine read our KeyUpdate").isTrue();
        SslCloseCompletionEvent closeNotifyAtPeer = peer.rec.awaitEvent(SslCloseCompletionEvent.class,
                Duration.ofSeconds(AWAIT_SECONDS));
        assertThat(closeNotifyAtPeer.isSuccess()).as("the peer read our close_notify: %s", closeNotifyAtPeer.cause())
                .isTrue();
    }

    /**
     * Where the peer stood before the op: how many bytes of ours its wire had read, and its engine's read cipher.
     * Tells what we sent since, and whether the peer's engine read a KeyUpdate of ours.
     */
    private static final class PeerMark {
        private final Setup setup;
        private final int raw;
        private final Object readCipher;

        private PeerMark(Setup setup, int raw, Object readCipher) {
            this.setup = setup;
            this.raw = raw;
            this.readCipher = readCipher;
        }

        static PeerMark of(Setup s) {
            try {
                return FaultRig.onEventLoop(s.peerChannel, () -> new PeerMark(s, s.peer.wire.rawIn().length,
                        JdkRecordLayer.readCipher(s.peer.ssl().engine())));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }

        /**
         * Our records since the mark, whole: once our FIN (or close) reached the peer, everything we sent is on its
         * wire. A clean bye left us the plain transport, with nothing sent on it: closing it now sends the FIN.
         */
        List<TlsRecords.Record> ourRecordsSince(Op op, TlsCloseEvent event) throws Exception {
            if (keepsTransport(op, event)) {
                setup.client.channel.close().await(AWAIT_SECONDS, SECONDS);
            }
            setup.peer.rec.awaitCondition(
                    r -> r.isInactive() || !r.eventsOfType(ChannelInputShutdownEvent.class).isEmpty(),
                    Duration.ofSeconds(AWAIT_SECONDS), "our FIN at the peer");
            byte[] rawIn = FaultRig.onEventLoop(setup.peerChannel, setup.peer.wire::rawIn);
            return TlsRecords.parse(Arrays.copyOfRange(rawIn, raw, rawIn.length));
        }

        /** The peer's engine has changed its read cipher since the mark: it read a KeyUpdate of ours. */
        boolean peerReadOurKeyUpdate() throws Exception {
            return FaultRig.onEventLoop(setup.peerChannel,
                    () -> JdkRecordLayer.readCipher(setup.peer.ssl().engine())) != readCipher;
        }
    }

    // ---- no application byte lost

    /**
     * 64 MiB, then {@code close()}: the peer receives every byte, then our close_notify, and answers. How long the
     * last batch and the peer's answer take depends on the machine, not on the handler: the read deadline is one that
     * no answering peer reaches ({@link #ANSWER_DEADLINE}).
     */
    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("transportsProvidersProtocols")
    void everyByteWrittenBeforeCloseArrivesBeforeOurCloseNotify(Transport transport, SslProvider provider,
                                                               String protocol) throws Exception {
        rig = new FaultRig(transport, 2);
        DigestSink sink = new DigestSink();
        Peer peer = rig.startPeer(provider, protocol, new GracefulTlsCloseHandler(), null);
        Client client = rig.connect(provider, protocol, peer.address(), answerDeadlines(), null);
        Channel peerChannel = peer.awaitHandshake();
        FaultRig.runOnEventLoop(peerChannel, () -> peerChannel.pipeline().addAfter("ssl", "sink", sink));

        int chunk = 64 * 1024;
        int chunks = 1024; // 64 MiB
        MessageDigest expected = MessageDigest.getInstance("SHA-256");
        byte[] block = new byte[chunk];
        Random random = new Random(42);
        List<ChannelFuture> writes = new ArrayList<>();
        for (int i = 0; i < chunks; i++) {
            random.nextBytes(block);
            expected.update(block);
            writes.add(client.channel.write(Unpooled.copiedBuffer(block)));
            if (i % 16 == 15) {
                client.channel.flush();
                // Bounded back-pressure from the test thread: wait until this batch is out.
                assertThat(writes.get(writes.size() - 1).await(60, SECONDS)).isTrue();
            }
        }
        Future<TlsCloseEvent> f = Op.CLOSE.start(client);
        TlsCloseEvent event = assertInvariants(client, f, Op.CLOSE, false,
                ANSWER_DEADLINE.plus(Duration.ofSeconds(60)));
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        assertThat(sink.awaitCloseNotify()).as("bytes before the peer saw our close_notify")
                .isEqualTo((long) chunk * chunks);
        assertThat(sink.digest()).isEqualTo(expected.digest());
        for (ChannelFuture w : writes) {
            assertThat(w.isSuccess()).isTrue();
        }
    }

    /** Digests application bytes; notes how many had arrived when the close_notify came. */
    static final class DigestSink extends ChannelInboundHandlerAdapter {
        private final MessageDigest digest;
        private long bytes;
        private long atCloseNotify = -1;

        DigestSink() throws Exception {
            digest = MessageDigest.getInstance("SHA-256");
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf) {
                ByteBuf buf = (ByteBuf) msg;
                try {
                    synchronized (this) {
                        digest.update(buf.nioBuffer());
                        bytes += buf.readableBytes();
                    }
                } finally {
                    buf.release();
                }
                return;
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof SslCloseCompletionEvent && ((SslCloseCompletionEvent) evt).isSuccess()) {
                synchronized (this) {
                    atCloseNotify = bytes;
                    notifyAll();
                }
            }
            ctx.fireUserEventTriggered(evt);
        }

        synchronized long awaitCloseNotify() throws InterruptedException {
            long deadline = System.nanoTime() + SECONDS.toNanos(60);
            while (atCloseNotify < 0 && System.nanoTime() < deadline) {
                wait(100);
            }
            return atCloseNotify;
        }

        synchronized byte[] digest() {
            return digest.digest();
        }
    }
}
