package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * Seeded random schedules over a real {@code SslHandler} pair on {@code EmbeddedChannel}s: writes, flushes, whole
 * and split forwarding, {@code close_notify} from either side ({@code close()}, {@code bye}, {@code shutdownOutput()}
 * on a {@link GracefulTlsCloseHandler}; a raw {@code closeOutbound()} or {@code close()} on a plain
 * {@code SslHandler} peer), input shutdown (FIN), the transport dying (inactive), and time passing. The client
 * always has the handler; the server has it in half of the schedules.
 *
 * <p>After each schedule: exactly one {@link TlsCloseEvent} per handler side, every future completed exactly once,
 * non-clean outcomes closed the channel, no exception at the tail, and, from ground truth kept by the schedule
 * (whether the peer's {@code close_notify} bytes were delivered in full before this side's input ended), no
 * truncation reported as {@code CLOSE_NOTIFY_RECEIVED}. Leaks fail the chunk (paranoid leak detection).
 *
 * <p>{@value #CHUNKS} chunks of {@code faults.schedules / CHUNKS} seeds (default 10,000 schedules); each seed picks
 * its provider and protocol. {@code -Dfaults.seed=N} runs that one seed; a failure names its seed.
 */
class RandomScheduleTest {

    static final int CHUNKS = 50;
    static final int SCHEDULES = Integer.getInteger("faults.schedules", 10_000);
    static final Long ONE_SEED = Long.getLong("faults.seed");
    static final long BASE_SEED = Long.getLong("faults.baseSeed", 0x5EED_0000L);

    private static final AtomicLong RUN = new AtomicLong();
    private static final Map<TlsCloseStatus, AtomicLong> OUTCOMES = new EnumMap<>(TlsCloseStatus.class);
    private static final long STARTED = System.nanoTime();

    static {
        for (TlsCloseStatus s : TlsCloseStatus.values()) {
            OUTCOMES.put(s, new AtomicLong());
        }
    }

    static Stream<long[]> chunks() {
        if (ONE_SEED != null) {
            return Stream.of(new long[] {ONE_SEED, ONE_SEED + 1});
        }
        int perChunk = Math.max(1, SCHEDULES / CHUNKS);
        return IntStream.range(0, CHUNKS)
                .mapToObj(i -> new long[] {BASE_SEED + (long) i * perChunk, BASE_SEED + (long) (i + 1) * perChunk});
    }

    @ParameterizedTest(name = "seeds {0}")
    @MethodSource("chunks")
    void randomSchedulesKeepTheInvariants(long[] seeds) {
        for (long seed = seeds[0]; seed < seeds[1]; seed++) {
            try {
                new Schedule(seed).run();
            } catch (Throwable t) {
                throw new AssertionError("schedule failed; reproduce with -Dfaults.seed=" + seed + ": " + t, t);
            }
            RUN.incrementAndGet();
        }
    }

    @AfterAll
    static void summary() {
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - STARTED);
        System.out.println("RandomScheduleTest: " + RUN.get() + " schedules in " + ms + " ms; outcomes "
                + OUTCOMES + " (java " + System.getProperty("java.version") + ")");
    }

    /** Records the event and the ground truth at the moment it fires. */
    static final class Probe extends ChannelInboundHandlerAdapter {
        final List<TlsCloseEvent> events = new ArrayList<>();
        final List<Boolean> closeNotifyDeliveredAtEvent = new ArrayList<>();
        boolean closeNotifyDelivered;

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                events.add((TlsCloseEvent) evt);
                closeNotifyDeliveredAtEvent.add(closeNotifyDelivered);
            }
            ctx.fireUserEventTriggered(evt);
        }
    }

    static final class Schedule {
        final long seed;
        final Random random;
        final SslProvider provider;
        final String protocol;
        final Map<Side, GracefulTlsCloseHandler> handlers = new EnumMap<>(Side.class);
        final Map<Side, Probe> probes = new EnumMap<>(Side.class);
        final Map<Side, RecordingHandler> recorders = new EnumMap<>(Side.class);
        final Map<Side, Boolean> inputEnded = new EnumMap<>(Side.class);
        final Map<Side, Boolean> closeCalled = new EnumMap<>(Side.class);
        final List<Future<?>> futures = new ArrayList<>();
        final List<AtomicInteger> completions = new ArrayList<>();
        final StringBuilder trace = new StringBuilder();
        TlsPair pair;

        Schedule(long seed) {
            this.seed = seed;
            this.random = new Random(seed);
            this.provider = random.nextBoolean() ? SslProvider.JDK : SslProvider.OPENSSL;
            this.protocol = random.nextBoolean() ? Tls.TLS_1_2 : Tls.TLS_1_3;
            for (Side s : Side.values()) {
                inputEnded.put(s, false);
                closeCalled.put(s, false);
                probes.put(s, new Probe());
                recorders.put(s, RecordingHandler.swallowingExceptions());
            }
            handlers.put(Side.CLIENT, handler());
            if (random.nextBoolean()) {
                handlers.put(Side.SERVER, handler());
            }
        }

        private GracefulTlsCloseHandler handler() {
            return GracefulTlsCloseHandler.builder()
                    .closeNotifyReadTimeout(java.time.Duration.ofMillis(500 + random.nextInt(3000)))
                    .closeNotifyFlushTimeout(java.time.Duration.ofMillis(500 + random.nextInt(3000)))
                    .halfCloseTimeout(java.time.Duration.ofMillis(random.nextInt(3) == 0 ? 0 : 500 + random.nextInt(3000)))
                    .build();
        }

        void run() {
            Tls.assertOpenSslAvailable();
            pair = TlsPair.builder(provider, protocol)
                    .client(p -> init(p, Side.CLIENT))
                    .server(p -> init(p, Side.SERVER))
                    .build();
            try {
                pair.freezeTime();
                pair.handshake();
                int steps = 5 + random.nextInt(35);
                for (int i = 0; i < steps; i++) {
                    step();
                }
                settle();
                // The end of every schedule: both sides close the channel, then time runs out.
                for (Side s : Side.values()) {
                    trace.append(" end-close:").append(s);
                    closeCalled.put(s, true);
                    track(pair.channel(s).pipeline().close());
                }
                settle();
                check();
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\n  " + describe(), e);
            } finally {
                pair.close();
            }
        }

        private String describe() {
            StringBuilder state = new StringBuilder();
            for (Side s : Side.values()) {
                EmbeddedChannel ch = pair.channel(s);
                state.append("\n  ").append(s).append(": open=").append(ch.isOpen()).append(" pipeline=")
                        .append(ch.pipeline().names()).append(" timeline=").append(recorders.get(s).timeline());
                if (handlers.containsKey(s)) {
                    state.append(" closeFuture=").append(handlers.get(s).closeFuture());
                    state.append(" closure=").append(dump(handlers.get(s)));
                }
            }
            return "seed " + seed + " " + provider + " " + protocol + " server handler: "
                    + handlers.containsKey(Side.SERVER) + "; trace:" + trace + state;
        }

        /** The handler's private closure state, by reflection, for a failure message. */
        private static String dump(Object handler) {
            try {
                java.lang.reflect.Field f = handler.getClass().getDeclaredField("closure");
                f.setAccessible(true);
                Object c = f.get(handler);
                if (c == null) {
                    return "null";
                }
                StringBuilder b = new StringBuilder("{");
                for (java.lang.reflect.Field x : c.getClass().getDeclaredFields()) {
                    x.setAccessible(true);
                    b.append(x.getName()).append('=').append(x.get(c)).append(' ');
                }
                return b.append('}').toString();
            } catch (ReflectiveOperationException | RuntimeException e) {
                return "?" + e;
            }
        }

        private void init(io.netty.channel.ChannelPipeline p, Side side) {
            GracefulTlsCloseHandler h = handlers.get(side);
            if (h != null) {
                p.addLast("tls-close", h);
            }
            p.addLast("probe", probes.get(side));
            p.addLast("rec", recorders.get(side));
        }

        private void step() {
            Side s = random.nextBoolean() ? Side.CLIENT : Side.SERVER;
            EmbeddedChannel ch = pair.channel(s);
            GracefulTlsCloseHandler h = handlers.get(s);
            int r = random.nextInt(100);
            if (r < 20) {
                int n = 1 + random.nextInt(random.nextInt(10) == 0 ? 40_000 : 300);
                trace.append(" write:").append(s).append(':').append(n);
                track(ch.write(Unpooled.wrappedBuffer(new byte[n])));
            } else if (r < 28) {
                trace.append(" flush:").append(s);
                ch.flush();
            } else if (r < 50) {
                move(s, random.nextInt(3) == 0);
            } else if (r < 55) {
                trace.append(" tasks");
                pair.runPendingTasks();
            } else if (r < 72) {
                closeOp(s, ch, h);
            } else if (r < 77) {
                if (!inputEnded.get(s)) {
                    trace.append(" fin->").append(s);
                    inputEnded.put(s, true);
                    ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
                }
            } else if (r < 80) {
                trace.append(" die:").append(s);
                inputEnded.put(s, true);
                if (ch.isOpen()) {
                    ch.unsafe().close(ch.unsafe().voidPromise()); // below every handler: no close_notify
                }
            } else if (r < 92) {
                long ms = random.nextInt(4000);
                trace.append(" time+").append(ms);
                pair.advanceTimeBy(ms, TimeUnit.MILLISECONDS);
            } else {
                trace.append(" closeFuture:").append(s);
                if (h != null) {
                    track(h.closeFuture());
                }
            }
        }

        private void closeOp(Side s, EmbeddedChannel ch, GracefulTlsCloseHandler h) {
            int op = random.nextInt(h != null ? 4 : 2);
            if (h == null) {
                SslHandler ssl = pair.sslHandler(s);
                if (op == 0) {
                    trace.append(" rawCloseOutbound:").append(s);
                    if (ch.pipeline().context(ssl) != null) {
                        track(ssl.closeOutbound());
                    }
                } else {
                    trace.append(" rawClose:").append(s);
                    closeCalled.put(s, true);
                    track(ch.pipeline().close()); // not EmbeddedChannel.close(): it cancels every scheduled task
                }
                return;
            }
            switch (op) {
                case 0:
                    trace.append(" close:").append(s);
                    closeCalled.put(s, true);
                    track(ch.pipeline().close()); // not EmbeddedChannel.close(): it cancels every scheduled task
                    break;
                case 1:
                    trace.append(" byeRdwr:").append(s);
                    trackBye(h.bye(TlsCloseMode.SHUT_RDWR));
                    break;
                case 2:
                    trace.append(" byeWr:").append(s);
                    trackBye(h.bye(TlsCloseMode.SHUT_WR));
                    break;
                default:
                    trace.append(" shutdownOutput:").append(s);
                    trackBye(h.shutdownOutput());
                    break;
            }
        }

        /** A bye on a handler that already left the pipeline (clean bye) fails: that's allowed; track the rest. */
        private void trackBye(Future<TlsCloseEvent> f) {
            track(f);
        }

        private void track(Future<?> f) {
            AtomicInteger n = new AtomicInteger();
            f.addListener(x -> n.incrementAndGet());
            futures.add(f);
            completions.add(n);
        }

        /** Moves {@code from}'s pending bytes to its peer, keeping the ground truth. */
        private void move(Side from, boolean split) {
            Side to = from.peer();
            boolean closeNotifyOut = pair.sslHandler(from).engine().isOutboundDone();
            byte[] bytes = pair.drainOutbound(from);
            if (bytes.length == 0) {
                return;
            }
            trace.append(" move:").append(from).append(':').append(bytes.length).append(split ? "/split" : "");
            if (inputEnded.get(to) || !pair.channel(to).isOpen()) {
                trace.append("(lost)");
                return;
            }
            if (closeNotifyOut) {
                probes.get(to).closeNotifyDelivered = true; // the close_notify was produced before this drain
            }
            if (split && bytes.length > 1) {
                pair.deliver(to, bytes, 1 + random.nextInt(bytes.length - 1));
            } else {
                pair.deliver(to, bytes);
            }
        }

        /** Moves bytes and lets time pass until nothing changes. */
        private void settle() {
            for (int round = 0; round < 5; round++) {
                for (int i = 0; i < 50; i++) {
                    pair.runPendingTasks();
                    int before = pair.pendingOutboundBytes(Side.CLIENT) + pair.pendingOutboundBytes(Side.SERVER);
                    move(Side.CLIENT, false);
                    move(Side.SERVER, false);
                    if (before == 0) {
                        break;
                    }
                }
                pair.advanceTimeBy(5, TimeUnit.SECONDS);
            }
        }

        private void check() {
            for (Side s : Side.values()) {
                Probe probe = probes.get(s);
                RecordingHandler rec = recorders.get(s);
                if (handlers.containsKey(s)) {
                    if (probe.events.size() != 1) {
                        throw new AssertionError(s + ": expected exactly one TlsCloseEvent, got " + probe.events);
                    }
                    TlsCloseEvent event = probe.events.get(0);
                    OUTCOMES.get(event.status()).incrementAndGet();
                    if (event.isClean() && !probe.closeNotifyDeliveredAtEvent.get(0)) {
                        throw new AssertionError(s + ": " + event
                                + " but the peer's close_notify was never delivered in full (truncation reported as"
                                + " clean)");
                    }
                    Future<TlsCloseEvent> cf = handlers.get(s).closeFuture();
                    if (!cf.isDone() || cf.getNow() != event) {
                        throw new AssertionError(s + ": closeFuture " + cf + " is not the event " + event);
                    }
                    boolean kept = event.isClean() && event.initiator() == TlsCloseInitiator.LOCAL
                            && event.mode() != null && !closeCalled.get(s);
                    if (!kept && pair.channel(s).isOpen()) {
                        throw new AssertionError(s + ": channel still open after " + event);
                    }
                }
                if (!handlers.containsKey(s)) {
                    continue; // a plain SslHandler peer sees our plaintext after a clean bye: not ours to judge
                }
                // Before a clean bye handed the transport back, nothing may reach the tail.
                List<Object> timeline = rec.timeline();
                for (Object o : timeline) {
                    if (o instanceof TlsCloseEvent && ((TlsCloseEvent) o).isClean()) {
                        break;
                    }
                    if (o instanceof Throwable) {
                        throw new AssertionError(s + ": exception at the tail: " + o, (Throwable) o);
                    }
                }
            }
            for (int i = 0; i < futures.size(); i++) {
                Future<?> f = futures.get(i);
                if (!f.isDone()) {
                    throw new AssertionError("future " + i + " never completed: " + f);
                }
                if (completions.get(i).get() != 1) {
                    throw new AssertionError("future " + i + " completed " + completions.get(i).get() + " times");
                }
            }
        }
    }
}
