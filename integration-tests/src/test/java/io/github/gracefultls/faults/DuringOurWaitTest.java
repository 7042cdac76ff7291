package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.FaultRig.Op;
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
import org.junit.jupiter.params.provider.MethodSource;

import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
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

    /**
     * A JDK TLS 1.3 peer, once our close_notify reaches its wire (its TLS never reads it), begins a post-handshake
     * exchange ({@code SSLEngine.beginHandshake()} on a TLS 1.3 session queues a KeyUpdate with update_requested),
     * sends a byte of data (which carries the KeyUpdate out first), then its close_notify. Our wait ends cleanly,
     * and we send nothing after our close_notify: no KeyUpdate answer, no alert.
     */
    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("nioTls13")
    void keyUpdateDuringOurWaitIsCleanAndAnsweredWithNothing(Transport transport, SslProvider provider,
                                                            String protocol) throws Exception {
        rig = new FaultRig(transport, 2);
        Peer peer = rig.startPeer(SslProvider.JDK, protocol, null, null);
        Client client = rig.connect(provider, protocol, peer.address(), answerDeadlines(), null);
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        int[] rawBefore = new int[1];
        String[] status = new String[1];
        peer.wire.deafThen(ctx -> {
            try {
                SSLEngine engine = peer.ssl().engine();
                engine.beginHandshake();
                status[0] = String.valueOf(engine.getHandshakeStatus());
            } catch (SSLException e) {
                status[0] = e.toString();
            }
            peerChannel.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {'u'}));
            peer.ssl().closeOutbound();
        });
        rawBefore[0] = FaultRig.onEventLoop(peerChannel, () -> peer.wire.rawIn().length);

        Future<TlsCloseEvent> f = Op.CLOSE.start(client);
        TlsCloseEvent event = assertInvariants(client, f, Op.CLOSE, false);
        assertThat(FaultRig.onEventLoop(peerChannel, () -> status[0])).as("KeyUpdate queued")
                .isEqualTo("NEED_WRAP");
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        assertThat(event.discardedBytes()).isEqualTo(1);
        // What we sent after the exchange: our close_notify, one record, and nothing after it.
        peer.rec.awaitEvent(ChannelInputShutdownEvent.class,
                Duration.ofSeconds(AWAIT_SECONDS)); // our FIN: everything we sent is in
        byte[] raw = peer.wire.rawIn();
        List<TlsRecords.Record> records = TlsRecords.parse(Arrays.copyOfRange(raw, rawBefore[0], raw.length));
        assertThat(records).as("records we sent after our close_notify began").hasSize(1);
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
