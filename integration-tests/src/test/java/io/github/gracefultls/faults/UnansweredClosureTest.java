package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.LoopLateness;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Transport;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static io.github.gracefultls.faults.FaultRig.AWAIT_SECONDS;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The SPEC's {@code TIMED_OUT}: peers that never answer our close_notify, so that nothing but the timer ends the
 * wait. A silent peer, a non-reader (full socket buffers: {@code closeNotifyFlushTimeout}, pending writes released)
 * and a trickler (a byte every 100 ms, which does not move the deadline) all end {@code TIMED_OUT} at the deadline,
 * within {@link #BOUND} after it (plus the event loop's measured lateness), against {@code close()},
 * {@code bye(SHUT_RDWR)} and {@code shutdownOutput()}.
 */
class UnansweredClosureTest extends FaultPeerTestBase {

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void silentPeerTimesOutAtTheDeadline(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        Setup s = setup(transport, provider, protocol, silentPeerDeadlines(), null);
        s.peer.wire.deafThen(null);

        try (LoopLateness late = LoopLateness.watch(s.client.channel.eventLoop())) {
            AtomicLong closedAt = completionTime(s.client.channel.closeFuture());
            long start = System.nanoTime();
            Future<TlsCloseEvent> f = op.start(s.client);
            TlsCloseEvent event = assertInvariants(s.client, f, op, false);
            Duration wall = Duration.ofNanos(closedAt.get() - start);

            assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
            assertThat(event.cause()).isInstanceOf(TimeoutException.class);
            Duration bound = late.allow(SILENT_DEADLINE.plus(BOUND));
            assertThat(event.elapsed()).as("elapsed of %s", event).isGreaterThanOrEqualTo(SILENT_DEADLINE)
                    .isLessThan(bound);
            assertThat(wall).as("until the channel closed").isGreaterThanOrEqualTo(SILENT_DEADLINE)
                    .isLessThan(bound);
        }
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("localOps")
    void nonReaderTimesOutOnTheFlushAndReleasesPendingWrites(Transport transport, SslProvider provider,
                                                             String protocol, Op op) throws Exception {
        Duration flush = Duration.ofMillis(500);
        // Only the flush timeout can end this wait; the others are never reached.
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyFlushTimeout(flush)
                .closeNotifyReadTimeout(ANSWER_DEADLINE).halfCloseTimeout(ANSWER_DEADLINE).build();
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

        try (LoopLateness late = LoopLateness.watch(client.channel.eventLoop())) {
            AtomicLong closedAt = completionTime(client.channel.closeFuture());
            long start = System.nanoTime();
            Future<TlsCloseEvent> f = op.start(client);
            TlsCloseEvent event = assertInvariants(client, f, op, false);
            Duration wall = Duration.ofNanos(closedAt.get() - start);

            assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
            Duration bound = late.allow(flush.plus(BOUND));
            assertThat(event.elapsed()).as("elapsed of %s", event).isGreaterThanOrEqualTo(flush)
                    .isLessThan(bound);
            assertThat(wall).as("until the channel closed").isLessThan(bound);
        }
        for (ChannelFuture w : writes) {
            assertThat(w.await(AWAIT_SECONDS, SECONDS)).as("pending write completed").isTrue();
        }
        assertThat(writes.stream().filter(w -> !w.isSuccess()).count()).as("writes failed at the close")
                .isPositive();
    }

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
        AtomicInteger trickled = new AtomicInteger();
        ScheduledFuture<?> trickle = peerChannel.eventLoop().scheduleAtFixedRate(() -> {
            peerChannel.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {'t'}));
            trickled.incrementAndGet();
        }, 0, 100, TimeUnit.MILLISECONDS);
        try (LoopLateness late = LoopLateness.watch(s.client.channel.eventLoop())) {
            int before = s.client.rec.receivedBytes().length;
            AtomicLong closedAt = completionTime(s.client.channel.closeFuture());
            int trickledBefore = trickled.get();
            long start = System.nanoTime();
            Future<TlsCloseEvent> f = op.start(s.client);
            AtomicInteger trickledInTime = new AtomicInteger(-1);
            f.addListener(x -> trickledInTime.set(trickled.get() - trickledBefore));
            TlsCloseEvent event = assertInvariants(s.client, f, op, false);
            Duration wall = Duration.ofNanos(closedAt.get() - start);

            assertStatus(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL);
            Duration bound = late.allow(deadline.plus(BOUND));
            assertThat(event.elapsed()).as("elapsed of %s", event).isGreaterThanOrEqualTo(deadline)
                    .isLessThan(bound);
            assertThat(wall).as("until the channel closed").isLessThan(bound);
            int delivered = s.client.rec.receivedBytes().length - before;
            if (op != Op.SHUTDOWN_OUTPUT) {
                assertThat(delivered).as("SHUT_RDWR delivers nothing after our close_notify")
                        .isLessThanOrEqualTo(1);
            }
            // About 10 bytes in the 1 s wait; 5 of them at least arrive unless the peer's loop hardly ran.
            if (trickledInTime.get() < 7) {
                LoopLateness.skipBecauseLate("the trickler wrote " + trickledInTime.get()
                        + " bytes during the 1 s wait (about 10 when its event loop runs on time)");
            }
            if (op == Op.SHUTDOWN_OUTPUT) {
                assertThat(delivered).as("SHUT_WR delivers the trickle").isGreaterThanOrEqualTo(5);
                assertThat(event.discardedBytes()).isZero();
            } else {
                assertThat(event.discardedBytes()).as("discarded by %s", event).isGreaterThanOrEqualTo(5);
            }
        } finally {
            trickle.cancel(false);
        }
    }
}
