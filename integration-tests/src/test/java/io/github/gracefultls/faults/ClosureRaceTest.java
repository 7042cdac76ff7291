package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.LoopLateness;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.Transport;
import io.netty.channel.ChannelFuture;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static io.github.gracefultls.faults.FaultRig.AWAIT_SECONDS;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The SPEC's invariants under races: both sides closing at once, {@code close()} from 16 threads (one event, every
 * promise completed), the {@code SslHandler} removed mid-closure ({@code FAILED}) and the channel deregistered
 * mid-closure (it still times out and closes; Netty fires no {@code channelInactive} for an unregistered channel).
 */
class ClosureRaceTest extends FaultPeerTestBase {

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void simultaneousCloseFromBothSidesIsCleanOnBoth(Transport transport, SslProvider provider, String protocol,
                                                     Op op) throws Exception {
        GracefulTlsCloseHandler peerHandler = answerDeadlines();
        Setup s = setup(transport, provider, protocol, answerDeadlines(), peerHandler);
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
        Setup s = setup(transport, provider, protocol, answerDeadlines(), new GracefulTlsCloseHandler());
        int threads = 16;
        CyclicBarrier barrier = new CyclicBarrier(threads);
        List<ChannelFuture> promises = Collections.synchronizedList(new ArrayList<>());
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

    /** The removal, not a timer, ends this wait: the deadlines are ones the test never reaches. */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void sslHandlerRemovedMidClosureFails(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        Setup s = setup(transport, provider, protocol, answerDeadlines(), null);
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
     * (its close future completes), but Netty fires no {@code channelInactive} for an unregistered channel. The
     * peer is silent, so the deadline is short; should the machine be so slow that the deregistration comes only
     * after the timeout, the case cannot prove its claim and is skipped, saying so.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void channelDeregisteredMidClosureStillConcludesOnce(Transport transport, SslProvider provider,
                                                         String protocol, Op op) throws Exception {
        Setup s = setup(transport, provider, protocol, silentPeerDeadlines(), null);
        s.peer.wire.deafThen(ctx -> { });
        try (LoopLateness late = LoopLateness.watch(s.client.channel.eventLoop())) {
            Future<TlsCloseEvent> f = op.start(s.client);
            AtomicLong concludedAt = completionTime(f);
            s.peer.wire.awaitDeafBytes(FaultRig.AWAIT);
            ChannelFuture deregistered = s.client.channel.deregister();
            AtomicLong deregisteredAt = completionTime(deregistered);
            assertThat(deregistered.await(AWAIT_SECONDS, SECONDS)).isTrue();
            TlsCloseEvent event = assertInvariants(s.client, f, op, true);
            assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
            assertThat(event.elapsed()).isGreaterThanOrEqualTo(SILENT_DEADLINE)
                    .isLessThan(late.allow(SILENT_DEADLINE.plus(BOUND)));
            if (deregisteredAt.get() - concludedAt.get() > 0) {
                LoopLateness.skipBecauseLate("the channel was deregistered only after the closure had timed out ("
                        + event + ")");
            }
        }
        // The channel is closed, but Netty fires no channelInactive for a channel that is no longer registered.
        assertThat(s.client.channel.closeFuture().await(AWAIT_SECONDS, SECONDS)).as("channel closed").isTrue();
        assertThat(s.client.channel.isOpen()).isFalse();
        assertThat(s.client.rec.isInactive()).isFalse();
    }
}
