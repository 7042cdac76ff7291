package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Transport;
import io.github.gracefultls.testing.Wire;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.provider.Arguments;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static io.github.gracefultls.faults.FaultRig.AWAIT_SECONDS;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * What the fault peer tests share: their cells, the scenario (our client and a Netty peer over loopback, past the
 * handshake and one exchange), the peer acting on its wire, and the invariants every case checks: exactly one
 * {@link TlsCloseEvent}, every future completed exactly once, the channel closed unless a clean bye kept it, no
 * exception at the pipeline tail, no leak (the leak detection extension fails the test).
 *
 * <p>Two kinds of deadline. {@link #SILENT_DEADLINE} where nothing but the timer can end the wait (a silent peer, a
 * non-reader, a trickler): it is short, and what the test proves. {@link #ANSWER_DEADLINE} where the peer's act ends
 * the wait (its close_notify, a FIN, a reset, an alert, our own removal of the {@code SslHandler}): it is far from
 * any stall of a loaded machine, so that a late event loop cannot turn the peer's outcome into {@code TIMED_OUT}.
 * The upper bound on a timer's lateness ({@link #BOUND}) is judged together with the lateness that a probe measured
 * on the same event loop over the same span ({@link io.github.gracefultls.testing.LoopLateness}).
 */
abstract class FaultPeerTestBase {

    /** Allowed beyond a configured deadline, besides the event loop's measured lateness. */
    static final Duration BOUND = Duration.ofMillis(1500);
    /** The deadline that ends the wait on a peer that never answers. */
    static final Duration SILENT_DEADLINE = Duration.ofMillis(400);
    /** The deadline that a peer's act must beat: not reached by any case, whatever the machine's load. */
    static final Duration ANSWER_DEADLINE = Duration.ofSeconds(30);

    FaultRig rig;
    /** The peer's TLS provider in {@link #setup}; null: the same as ours. */
    SslProvider peerProvider;

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
        Object[] out = Arrays.copyOf(args, args.length + 1);
        out[args.length] = extra;
        return Arguments.of(out);
    }

    // ---- deadlines

    /** Our handler against a peer that never answers: every deadline {@link #SILENT_DEADLINE}. */
    static GracefulTlsCloseHandler silentPeerDeadlines() {
        return deadlines(SILENT_DEADLINE);
    }

    /** A handler whose wait the peer's act ends: every deadline {@link #ANSWER_DEADLINE}. */
    static GracefulTlsCloseHandler answerDeadlines() {
        return deadlines(ANSWER_DEADLINE);
    }

    private static GracefulTlsCloseHandler deadlines(Duration d) {
        return GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(d).halfCloseTimeout(d)
                .closeNotifyFlushTimeout(d).build();
    }

    /** The {@link System#nanoTime()} at which {@code f} completes (on the thread completing it), 0 until then. */
    static AtomicLong completionTime(Future<?> f) {
        AtomicLong at = new AtomicLong();
        f.addListener(x -> at.set(System.nanoTime()));
        return at;
    }

    // ---- the scenario

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
        Peer peer = rig.startPeer(peerProvider != null ? peerProvider : provider, protocol, theirs, null);
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
        Setup s = setup(transport, provider, protocol, answerDeadlines(), null);
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

    static TlsCloseInitiator initiator(Op op) {
        return op == Op.PEER ? TlsCloseInitiator.PEER : TlsCloseInitiator.LOCAL;
    }

    static void exchange(Channel peerChannel, Client client) throws Exception {
        peerChannel.writeAndFlush(Unpooled.copiedBuffer("ping", StandardCharsets.US_ASCII)).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(4, Duration.ofSeconds(AWAIT_SECONDS));
    }

    // ---- the invariants

    /**
     * The peer's data that came before its closure: under SHUT_RDWR ({@code close()}, {@code bye(SHUT_RDWR)})
     * released unread and counted, else delivered whole before the event. The exchange's ping (4 bytes) came first.
     */
    static void assertData(Setup setup, Op op, TlsCloseEvent event, byte[] expected) {
        List<Object> timeline = setup.client.rec.timeline();
        long deliveredBeforeEvent = timeline.subList(0, timeline.indexOf(event)).stream()
                .filter(RecordingHandler.Read.class::isInstance)
                .mapToLong(r -> ((RecordingHandler.Read) r).bytes().length).sum();
        if (op == Op.CLOSE || op == Op.BYE_RDWR) {
            assertThat(event.discardedBytes()).as("SHUT_RDWR releases the data: %s", event)
                    .isEqualTo(expected.length);
            assertThat(setup.client.rec.receivedBytes()).as("delivered: the ping only").hasSize(4);
        } else {
            assertThat(event.discardedBytes()).isZero();
            assertThat(deliveredBeforeEvent).as("the data, whole, before the event")
                    .isEqualTo(4 + expected.length);
            byte[] received = setup.client.rec.receivedBytes();
            assertThat(Arrays.copyOfRange(received, 4, received.length)).as("the data's bytes")
                    .isEqualTo(expected);
        }
    }


    static void assertStatus(TlsCloseEvent event, TlsCloseStatus status, TlsCloseInitiator initiator) {
        assertThat(event.status()).as("status of %s (cause %s)", event, event.cause()).isEqualTo(status);
        assertThat(event.initiator()).as("initiator of %s", event).isEqualTo(initiator);
    }

    /** As below, waiting for the closure longer than any deadline of these tests. */
    static TlsCloseEvent assertInvariants(Client c, Future<TlsCloseEvent> f, Op op, boolean mayStayOpen)
            throws Exception {
        return assertInvariants(c, f, op, mayStayOpen, ANSWER_DEADLINE.plus(FaultRig.AWAIT));
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
        int inactive = events.indexOf(RecordingHandler.Marker.CHANNEL_INACTIVE);
        assertThat(e).as("event before channelInactive in %s", events).isLessThan(inactive);
    }
}
