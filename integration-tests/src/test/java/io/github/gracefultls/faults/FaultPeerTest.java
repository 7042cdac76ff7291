package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Transport;
import io.github.gracefultls.testing.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static io.github.gracefultls.faults.FaultRig.AWAIT_SECONDS;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Hostile and broken peers over real loopback sockets, each against {@code close()}, {@code bye(SHUT_RDWR)},
 * {@code shutdownOutput()} and, where it applies, a closure the peer begins. NIO for every provider and protocol,
 * epoll for a subset. Every case checks the invariants: exactly one {@link TlsCloseEvent}, every future completed
 * exactly once, the channel closed unless a clean bye kept it, no exception at the pipeline tail, no leak (the
 * leak detection extension fails the test).
 */
class FaultPeerTest {

    /** Allowed beyond a configured deadline. */
    static final Duration BOUND = Duration.ofMillis(1500);
    static final Duration DEADLINE = Duration.ofMillis(400);

    private FaultRig rig;

    @AfterEach
    void tearDown() throws Exception {
        if (rig != null) {
            rig.close();
            rig = null;
        }
    }

    // ---- parameter sources

    static Stream<Arguments> transportsProvidersProtocols() {
        Tls.assertOpenSslAvailable();
        List<Arguments> out = new ArrayList<>();
        for (Tls.Provider p : Tls.Provider.values()) {
            for (String protocol : Tls.PROTOCOLS) {
                out.add(Arguments.of(Transport.NIO, p.sslProvider(), protocol));
            }
        }
        // The native transports: two cells each (io_uring's are skipped where the kernel has no io_uring).
        for (Transport transport : Transport.values()) {
            if (transport != Transport.NIO) {
                out.add(Arguments.of(transport, SslProvider.JDK, Tls.TLS_1_3));
                out.add(Arguments.of(transport, SslProvider.OPENSSL, Tls.TLS_1_2));
            }
        }
        return out.stream();
    }

    static Stream<Arguments> localOps() {
        return transportsProvidersProtocols().flatMap(a -> Stream.of(Op.LOCAL).map(op -> append(a, op)));
    }

    static Stream<Arguments> allOps() {
        return transportsProvidersProtocols().flatMap(a -> Stream.of(Op.values()).map(op -> append(a, op)));
    }

    static Stream<Arguments> nioTls13() {
        return transportsProvidersProtocols().filter(a -> a.get()[0] == Transport.NIO
                && Tls.TLS_1_3.equals(a.get()[2]));
    }

    private static Arguments append(Arguments a, Object extra) {
        Object[] args = a.get();
        Object[] out = java.util.Arrays.copyOf(args, args.length + 1);
        out[args.length] = extra;
        return Arguments.of(out);
    }

    // ---- 1. silent

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void silentPeerTimesOutAtTheDeadline(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        Setup s = setup(transport, provider, protocol, deadlines(), null);
        s.peer.wire.deafThen(null);

        long start = System.nanoTime();
        Future<TlsCloseEvent> f = op.start(s.client);
        TlsCloseEvent event = assertInvariants(s.client, f, op, false);
        long wall = System.nanoTime() - start;

        assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
        assertThat(event.cause()).isInstanceOf(TimeoutException.class);
        assertThat(event.elapsed()).as("elapsed of %s", event).isGreaterThanOrEqualTo(DEADLINE)
                .isLessThan(DEADLINE.plus(BOUND));
        assertThat(Duration.ofNanos(wall)).isGreaterThanOrEqualTo(DEADLINE).isLessThan(DEADLINE.plus(BOUND));
    }

    // ---- 2. non-reader

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void nonReaderTimesOutOnTheFlushAndReleasesPendingWrites(Transport transport, SslProvider provider,
                                                             String protocol, Op op) throws Exception {
        Duration flush = Duration.ofMillis(500);
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyFlushTimeout(flush)
                .closeNotifyReadTimeout(Duration.ofSeconds(5)).halfCloseTimeout(Duration.ofSeconds(5)).build();
        rig = new FaultRig(transport, 2);
        Peer peer = rig.startPeer(provider, protocol, null, b -> b.option(ChannelOption.SO_RCVBUF, 4096));
        Client client = rig.connect(provider, protocol, peer.address(), handler,
                b -> b.option(ChannelOption.SO_SNDBUF, 4096));
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        FaultRig.runOnEventLoop(peerChannel, () -> peerChannel.config().setAutoRead(false));

        // 8 MiB of pending writes: far more than the socket buffers hold.
        List<ChannelFuture> writes = new ArrayList<>();
        FaultRig.runOnEventLoop(client.channel, () -> {
            for (int i = 0; i < 128; i++) {
                writes.add(client.channel.write(Unpooled.wrappedBuffer(TlsSockets.payload(64 * 1024))));
            }
            client.channel.flush();
        });
        assertThat(client.channel.isWritable()).isFalse();

        long start = System.nanoTime();
        Future<TlsCloseEvent> f = op.start(client);
        TlsCloseEvent event = assertInvariants(client, f, op, false);
        long wall = System.nanoTime() - start;

        assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
        assertThat(event.elapsed()).as("elapsed of %s", event).isGreaterThanOrEqualTo(flush)
                .isLessThan(flush.plus(BOUND));
        assertThat(Duration.ofNanos(wall)).isLessThan(flush.plus(BOUND));
        for (ChannelFuture w : writes) {
            assertThat(w.await(AWAIT_SECONDS, SECONDS)).as("pending write completed").isTrue();
        }
        assertThat(writes.stream().filter(w -> !w.isSuccess()).count()).as("writes failed at the close")
                .isPositive();
    }

    // ---- 3. trickler

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void tricklerCannotHoldTheClosurePastTheDeadline(Transport transport, SslProvider provider, String protocol,
                                                     Op op) throws Exception {
        Duration deadline = Duration.ofSeconds(1);
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(deadline)
                .halfCloseTimeout(deadline).build();
        Setup s = setup(transport, provider, protocol, handler, null);
        s.peer.wire.deafThen(null); // never sees our close_notify, so its engine never answers it
        Channel peerChannel = s.peerChannel;
        ScheduledFuture<?> trickle = peerChannel.eventLoop().scheduleAtFixedRate(
                () -> peerChannel.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {'t'})),
                0, 100, TimeUnit.MILLISECONDS);
        try {
            int before = s.client.rec.receivedBytes().length;
            long start = System.nanoTime();
            Future<TlsCloseEvent> f = op.start(s.client);
            TlsCloseEvent event = assertInvariants(s.client, f, op, false);
            long wall = System.nanoTime() - start;

            assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
            assertThat(event.elapsed()).as("elapsed of %s", event).isGreaterThanOrEqualTo(deadline)
                    .isLessThan(deadline.plus(BOUND));
            assertThat(Duration.ofNanos(wall)).isLessThan(deadline.plus(BOUND));
            int delivered = s.client.rec.receivedBytes().length - before;
            if (op == Op.SHUTDOWN_OUTPUT) {
                assertThat(delivered).as("SHUT_WR delivers the trickle").isGreaterThanOrEqualTo(5);
                assertThat(event.discardedBytes()).isZero();
            } else {
                assertThat(event.discardedBytes()).as("discarded by %s", event).isGreaterThanOrEqualTo(5);
                assertThat(delivered).as("SHUT_RDWR delivers nothing after our close_notify")
                        .isLessThanOrEqualTo(1);
            }
        } finally {
            trickle.cancel(false);
        }
    }

    // ---- 4. FIN

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

    // ---- 5. RST

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
        Setup s = setup(transport, provider, protocol, deadlines(), null);
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

    // ---- 6. garbage, fatal alert, close_notify with data, second close_notify

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
                .filter(io.github.gracefultls.testing.RecordingHandler.Read.class::isInstance)
                .mapToLong(r -> ((io.github.gracefultls.testing.RecordingHandler.Read) r).bytes().length).sum();
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

    // ---- 8. races

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void simultaneousCloseFromBothSidesIsCleanOnBoth(Transport transport, SslProvider provider, String protocol,
                                                     Op op) throws Exception {
        GracefulTlsCloseHandler peerHandler = deadlines();
        Setup s = setup(transport, provider, protocol, deadlines(), peerHandler);
        Client peerAsClient = new Client(s.peerChannel, peerHandler, s.peer.rec);
        CyclicBarrier barrier = new CyclicBarrier(2);
        Thread other = new Thread(() -> {
            try {
                barrier.await(AWAIT_SECONDS, SECONDS);
                op.start(peerAsClient);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        other.start();
        barrier.await(AWAIT_SECONDS, SECONDS);
        Future<TlsCloseEvent> f = op.start(s.client);
        other.join(TimeUnit.SECONDS.toMillis(AWAIT_SECONDS));
        TlsCloseEvent ours = assertInvariants(s.client, f, op, true);
        TlsCloseEvent theirs = assertInvariants(peerAsClient, peerHandler.closeFuture(), op, true);
        assertThat(ours.isClean()).as("ours: %s", ours).isTrue();
        assertThat(theirs.isClean()).as("theirs: %s", theirs).isTrue();
        assertThat(ours.isClean()).as("ours %s, theirs %s; our timeline %s; their timeline %s", ours, theirs,
                s.client.rec.timeline(), s.peer.rec.timeline()).isTrue();
        assertChannelState(s.client, op, ours);
        assertChannelState(peerAsClient, op, theirs);
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("transportsProvidersProtocols")
    void closeFromSixteenThreadsGivesOneEventAndCompletesEveryPromise(Transport transport, SslProvider provider,
                                                                      String protocol) throws Exception {
        Setup s = setup(transport, provider, protocol, deadlines(), new GracefulTlsCloseHandler());
        int threads = 16;
        CyclicBarrier barrier = new CyclicBarrier(threads);
        List<ChannelFuture> promises = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> started = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(() -> {
                try {
                    barrier.await(AWAIT_SECONDS, SECONDS);
                    promises.add(s.client.channel.close());
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            t.start();
            started.add(t);
        }
        for (Thread t : started) {
            t.join(TimeUnit.SECONDS.toMillis(AWAIT_SECONDS));
        }
        assertThat(promises).hasSize(threads);
        TlsCloseEvent event = assertInvariants(s.client, s.client.handler.closeFuture(), Op.CLOSE, false);
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        for (ChannelFuture p : promises) {
            assertThat(p.await(AWAIT_SECONDS, SECONDS)).isTrue();
            assertThat(p.isSuccess()).as("close promise %s", p).isTrue();
        }
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void sslHandlerRemovedMidClosureFails(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        Setup s = setup(transport, provider, protocol, deadlines(), null);
        s.peer.wire.deafThen(ctx -> { });
        Future<TlsCloseEvent> f = op.start(s.client);
        s.peer.wire.awaitDeafBytes(FaultRig.AWAIT);
        FaultRig.runOnEventLoop(s.client.channel, () -> {
            SslHandler ssl = s.client.channel.pipeline().get(SslHandler.class);
            if (ssl != null) {
                s.client.channel.pipeline().remove(ssl);
            }
        });
        TlsCloseEvent event = assertInvariants(s.client, f, op, false);
        assertStatus(event, TlsCloseStatus.FAILED, TlsCloseInitiator.LOCAL);
    }

    /**
     * {@code deregister()} while we wait for the peer's close_notify. The handler's timer is scheduled on the
     * event loop, which still runs it; the closure then concludes TIMED_OUT at its deadline and closes the channel
     * (its close future completes), but Netty fires no {@code channelInactive} for an unregistered channel.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void channelDeregisteredMidClosureStillConcludesOnce(Transport transport, SslProvider provider,
                                                         String protocol, Op op) throws Exception {
        Setup s = setup(transport, provider, protocol, deadlines(), null);
        s.peer.wire.deafThen(ctx -> { });
        Future<TlsCloseEvent> f = op.start(s.client);
        s.peer.wire.awaitDeafBytes(FaultRig.AWAIT);
        assertThat(s.client.channel.deregister().await(AWAIT_SECONDS, SECONDS)).isTrue();
        TlsCloseEvent event = assertInvariants(s.client, f, op, true);
        assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
        assertThat(event.elapsed()).isGreaterThanOrEqualTo(DEADLINE).isLessThan(DEADLINE.plus(BOUND));
        // The channel is closed, but Netty fires no channelInactive for a channel that is no longer registered.
        assertThat(s.client.channel.closeFuture().await(AWAIT_SECONDS, SECONDS)).as("channel closed").isTrue();
        assertThat(s.client.channel.isOpen()).isFalse();
        assertThat(s.client.rec.isInactive()).isFalse();
    }

    // ---- 7. TLS 1.3 post-handshake messages

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
        Client client = rig.connect(provider, protocol, peer.address(), deadlines(), null);
        Channel peerChannel = peer.awaitHandshake();
        rawAtHandshake[0] = FaultRig.onEventLoop(peerChannel, () -> peer.wire.rawIn().length);

        Future<TlsCloseEvent> f = Op.CLOSE.start(client);
        TlsCloseEvent event = assertInvariants(client, f, Op.CLOSE, false);
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        peer.rec.awaitCondition(r -> r.isInactive(), Duration.ofSeconds(AWAIT_SECONDS), "peer inactive");
        byte[] raw = peer.wire.rawIn();
        byte[] after = java.util.Arrays.copyOfRange(raw, rawAtHandshake[0], raw.length);
        List<io.github.gracefultls.testing.TlsRecords.Record> records =
                io.github.gracefultls.testing.TlsRecords.parse(after);
        assertThat(records).as("our records after the handshake").hasSize(1);
        assertThat(records.get(0).type()).as("%s", records).isEqualTo(io.github.gracefultls.testing.TlsRecords.APPLICATION_DATA);
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
        Client client = rig.connect(provider, protocol, peer.address(), deadlines(), null);
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        int[] rawBefore = new int[1];
        String[] status = new String[1];
        peer.wire.deafThen(ctx -> {
            try {
                javax.net.ssl.SSLEngine engine = peer.ssl().engine();
                engine.beginHandshake();
                status[0] = String.valueOf(engine.getHandshakeStatus());
            } catch (javax.net.ssl.SSLException e) {
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
        peer.rec.awaitEvent(io.netty.channel.socket.ChannelInputShutdownEvent.class,
                Duration.ofSeconds(AWAIT_SECONDS)); // our FIN: everything we sent is in
        byte[] raw = peer.wire.rawIn();
        List<io.github.gracefultls.testing.TlsRecords.Record> records = io.github.gracefultls.testing.TlsRecords
                .parse(java.util.Arrays.copyOfRange(raw, rawBefore[0], raw.length));
        assertThat(records).as("records we sent after our close_notify began").hasSize(1);
    }

    // ---- no application byte lost

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("transportsProvidersProtocols")
    void everyByteWrittenBeforeCloseArrivesBeforeOurCloseNotify(Transport transport, SslProvider provider,
                                                               String protocol) throws Exception {
        rig = new FaultRig(transport, 2);
        DigestSink sink = new DigestSink();
        Peer peer = rig.startPeer(provider, protocol, new GracefulTlsCloseHandler(), null);
        Client client = rig.connect(provider, protocol, peer.address(), deadlines(), null);
        Channel peerChannel = peer.awaitHandshake();
        FaultRig.runOnEventLoop(peerChannel, () -> peerChannel.pipeline().addAfter("ssl", "sink", sink));

        int chunk = 64 * 1024;
        int chunks = 1024; // 64 MiB
        MessageDigest expected = MessageDigest.getInstance("SHA-256");
        byte[] block = new byte[chunk];
        java.util.Random random = new java.util.Random(42);
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
        TlsCloseEvent event = assertInvariants(client, f, Op.CLOSE, false, Duration.ofSeconds(60));
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

    // ---- shared scenario machinery

    static final class Setup {
        final Peer peer;
        final Client client;
        final Channel peerChannel;

        Setup(Peer peer, Client client, Channel peerChannel) {
            this.peer = peer;
            this.client = client;
            this.peerChannel = peerChannel;
        }
    }

    Setup setup(Transport transport, SslProvider provider, String protocol, GracefulTlsCloseHandler ours,
                GracefulTlsCloseHandler theirs) throws Exception {
        rig = new FaultRig(transport, 2);
        Peer peer = rig.startPeer(provider, protocol, theirs, null);
        Client client = rig.connect(provider, protocol, peer.address(), ours, null);
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        return new Setup(peer, client, peerChannel);
    }

    interface PeerAction {
        void act(Wire wire, Peer peer);
    }

    TlsCloseEvent peerActs(Transport transport, SslProvider provider, String protocol, Op op, PeerAction action)
            throws Exception {
        return peerActs(transport, provider, protocol, op, action, null);
    }

    /**
     * The peer performs {@code action} on its event loop: when our close_notify reaches it (it goes deaf first, so
     * its TLS never reads it) for a local {@code op}, or at once for {@link Op#PEER}. Checks the invariants.
     */
    TlsCloseEvent peerActs(Transport transport, SslProvider provider, String protocol, Op op, PeerAction action,
                           Consumer<Setup> beforeOp) throws Exception {
        Setup s = setup(transport, provider, protocol, deadlines(), null);
        if (beforeOp != null) {
            beforeOp.accept(s);
        }
        Future<TlsCloseEvent> f;
        if (op == Op.PEER) {
            f = s.client.handler.closeFuture();
            FaultRig.runOnEventLoop(s.peerChannel, () -> action.act(s.peer.wire, s.peer));
        } else {
            s.peer.wire.deafThen(ctx -> action.act(s.peer.wire, s.peer));
            f = op.start(s.client);
        }
        TlsCloseEvent event = assertInvariants(s.client, f, op, true);
        assertChannelState(s.client, op, event);
        return event;
    }

    static GracefulTlsCloseHandler deadlines() {
        return GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(DEADLINE).halfCloseTimeout(DEADLINE)
                .closeNotifyFlushTimeout(DEADLINE).build();
    }

    static TlsCloseInitiator initiator(Op op) {
        return op == Op.PEER ? TlsCloseInitiator.PEER : TlsCloseInitiator.LOCAL;
    }

    private static void exchange(Channel peerChannel, Client client) throws Exception {
        peerChannel.writeAndFlush(Unpooled.copiedBuffer("ping", StandardCharsets.US_ASCII)).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(4, Duration.ofSeconds(AWAIT_SECONDS));
    }

    static void assertStatus(TlsCloseEvent event, TlsCloseStatus status, TlsCloseInitiator initiator) {
        assertThat(event.status()).as("status of %s (cause %s)", event, event.cause()).isEqualTo(status);
        assertThat(event.initiator()).as("initiator of %s", event).isEqualTo(initiator);
    }

    static TlsCloseEvent assertInvariants(Client c, Future<TlsCloseEvent> f, Op op, boolean mayStayOpen)
            throws Exception {
        return assertInvariants(c, f, op, mayStayOpen, Duration.ofSeconds(AWAIT_SECONDS));
    }

    /**
     * One event, the futures completed once with it, no exception at the tail; the channel closed (unless
     * {@code mayStayOpen}, then {@link #assertChannelState} decides).
     */
    static TlsCloseEvent assertInvariants(Client c, Future<TlsCloseEvent> f, Op op, boolean mayStayOpen,
                                          Duration bound) throws Exception {
        AtomicInteger completions = new AtomicInteger();
        f.addListener(x -> completions.incrementAndGet());
        assertThat(f.await(bound.toMillis())).as("closure future of %s completed", op).isTrue();
        assertThat(f.isSuccess()).as("future of %s: %s", op, f.cause()).isTrue();
        TlsCloseEvent event = f.getNow();
        assertThat(c.handler.closeFuture().getNow()).isSameAs(event);
        if (!mayStayOpen) {
            assertThat(c.channel.closeFuture().await(AWAIT_SECONDS, SECONDS)).as("channel closed").isTrue();
            c.rec.awaitInactive(Duration.ofSeconds(AWAIT_SECONDS));
        }
        // Let anything still in flight land, then count.
        FaultRig.runOnEventLoop(c.channel, () -> { });
        assertThat(c.rec.eventsOfType(TlsCloseEvent.class)).as("events: %s", c.rec.events()).containsExactly(event);
        if (keepsTransport(op, event)) {
            // After a clean bye the transport is plain TCP and the application's: a later reset is its business.
            List<Object> timeline = c.rec.timeline();
            assertThat(timeline.subList(0, timeline.indexOf(event)).stream().filter(Throwable.class::isInstance))
                    .as("exceptions at the tail before the event: %s", timeline).isEmpty();
        } else {
            assertThat(c.rec.exceptions()).as("exceptions at the tail").isEmpty();
        }
        assertThat(completions.get()).as("listener calls").isEqualTo(1);
        return event;
    }

    /**
     * A clean bye that we began hands the transport back. (When the peer's close_notify got there before our
     * bye, the closure was the peer's, and PeerClosePolicy.CLOSE closes the channel; the bye joins it.)
     */
    static boolean keepsTransport(Op op, TlsCloseEvent event) {
        return op == Op.BYE_RDWR && event.isClean() && event.initiator() == TlsCloseInitiator.LOCAL;
    }

    /** Closed, unless a clean bye kept the transport: then open and without SslHandler. */
    static void assertChannelState(Client c, Op op, TlsCloseEvent event) throws Exception {
        if (keepsTransport(op, event)) {
            assertThat(c.channel.isOpen()).as("a clean bye keeps the channel: %s", c.rec.timeline()).isTrue();
            assertThat(FaultRig.onEventLoop(c.channel, () -> c.channel.pipeline().get(SslHandler.class))).isNull();
            return;
        }
        assertThat(c.channel.closeFuture().await(AWAIT_SECONDS, SECONDS)).as("channel closed after %s", event)
                .isTrue();
        c.rec.awaitInactive(Duration.ofSeconds(AWAIT_SECONDS));
        assertThat(c.rec.exceptions()).as("exceptions at the tail: %s", c.rec.timeline()).isEmpty();
        List<Object> events = c.rec.events();
        int e = events.indexOf(event);
        int inactive = events.indexOf(io.github.gracefultls.testing.RecordingHandler.Marker.CHANNEL_INACTIVE);
        assertThat(e).as("event before channelInactive in %s", events).isLessThan(inactive);
    }
}
