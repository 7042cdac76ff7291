package io.github.gracefultls.faults;

import io.github.gracefultls.TlsCloseStatus;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslContext;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.ScheduledFuture;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import javax.management.ObjectName;

/**
 * What the two JVMs of the load soak share: {@link SoakTest} (the servers, and the ground truth) and
 * {@link SoakClient} (the clients, in a child JVM). The behaviours, the announcement a client sends to its server,
 * the event loop probe and a few process figures.
 *
 * <p>The announcement is the first application data a client sends, {@value #ANNOUNCEMENT_LENGTH} bytes: the
 * behaviour's code, then the connection's id (a big-endian int) that the parent gave the child for it.
 */
final class Soak {

    static final int ANNOUNCEMENT_LENGTH = 5;

    private Soak() {
    }

    /** The behaviours; the server learns the client's from its announcement. */
    enum Behaviour {
        LOCAL_CLEAN('L', TlsCloseStatus.CLOSE_NOTIFY_RECEIVED),
        PEER_CLEAN('P', TlsCloseStatus.CLOSE_NOTIFY_RECEIVED),
        SILENT('S', TlsCloseStatus.TIMED_OUT),
        FIN('F', TlsCloseStatus.TRUNCATED),
        FIN_IN_RECORD('M', TlsCloseStatus.TRUNCATED),
        RESET('R', TlsCloseStatus.TRUNCATED);

        final char code;
        final TlsCloseStatus expected;

        Behaviour(char code, TlsCloseStatus expected) {
            this.code = code;
            this.expected = expected;
        }

        static Behaviour of(int code) {
            for (Behaviour b : values()) {
                if (b.code == code) {
                    return b;
                }
            }
            throw new IllegalArgumentException("code " + code);
        }

        boolean serverCloses() {
            return this == LOCAL_CLEAN || this == SILENT;
        }
    }

    static byte[] announcement(Behaviour b, int id) {
        return new byte[] {(byte) b.code, (byte) (id >>> 24), (byte) (id >>> 16), (byte) (id >>> 8), (byte) id};
    }

    static int announcedId(byte[] announcement) {
        return (announcement[1] & 0xff) << 24 | (announcement[2] & 0xff) << 16 | (announcement[3] & 0xff) << 8
                | announcement[4] & 0xff;
    }

    /**
     * A 10 ms task on every event loop of some groups, recording how late it runs. The first {@link #WARMUP_NANOS}
     * (class loading, JIT, first handshakes; 3 s, or the load's ramp if longer) are also kept apart: the delay after the warm-up counts only the time
     * a task waited after it.
     */
    static final class LoopProbe {
        /** The load's ramp ({@code soak.rampSeconds}, default 10), also warm-up for the probe. */
        static final int RAMP_SECONDS = Integer.getInteger("soak.rampSeconds", 10);
        static final long WARMUP_NANOS = TimeUnit.SECONDS.toNanos(Math.max(3, RAMP_SECONDS));
        private static final long PERIOD_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

        private final AtomicLong maxDelayNanos = new AtomicLong();
        private final AtomicLong maxDelayAfterWarmupNanos = new AtomicLong();
        private final AtomicLong windowMaxDelayNanos = new AtomicLong();
        private final List<ScheduledFuture<?>> tasks = new ArrayList<>();
        private volatile long started;
        private volatile long worstAtNanos;
        private int loops;

        void start(EventLoopGroup... groups) {
            started = System.nanoTime();
            for (EventLoopGroup g : groups) {
                for (EventExecutor e : g) {
                    tasks.add(startOn((EventLoop) e));
                    loops++;
                }
            }
        }

        void stop() {
            for (ScheduledFuture<?> t : tasks) {
                t.cancel(false);
            }
        }

        int loops() {
            return loops;
        }

        long maxDelayMillis() {
            return TimeUnit.NANOSECONDS.toMillis(maxDelayNanos.get());
        }

        long maxDelayAfterWarmupMillis() {
            return TimeUnit.NANOSECONDS.toMillis(maxDelayAfterWarmupNanos.get());
        }

        /** The largest delay since the last call, in milliseconds. */
        long takeWindowMaxDelayMillis() {
            return TimeUnit.NANOSECONDS.toMillis(windowMaxDelayNanos.getAndSet(0));
        }

        /** Seconds since {@link #start}. */
        double secondsSinceStart() {
            return (System.nanoTime() - started) / 1e9;
        }

        /** When, after {@link #start}, the largest delay after the warm-up ended, in milliseconds. */
        long worstAtMillis() {
            return TimeUnit.NANOSECONDS.toMillis(worstAtNanos);
        }

        private ScheduledFuture<?> startOn(EventLoop loop) {
            // Fixed delay: each run is due one period after the previous one ended, so its delay is how late a due
            // task ran. (At a fixed rate, a loop whose iterations take longer than the period never runs the missed
            // periods' catch-ups in time, and the delay measured against the grid grows without a stall.)
            long[] dueAt = {System.nanoTime() + PERIOD_NANOS};
            return loop.scheduleWithFixedDelay(() -> {
                long now = System.nanoTime();
                long delay = now - dueAt[0];
                // Only the part of the delay after the warm-up: a stall that began in it counts from its end.
                long delayAfterWarmup = now - Math.max(dueAt[0], started + WARMUP_NANOS);
                maxDelayNanos.accumulateAndGet(delay, Math::max);
                windowMaxDelayNanos.accumulateAndGet(delay, Math::max);
                if (delayAfterWarmup > 0
                        && maxDelayAfterWarmupNanos.accumulateAndGet(delayAfterWarmup, Math::max) == delayAfterWarmup) {
                    worstAtNanos = now - started;
                }
                dueAt[0] = System.nanoTime() + PERIOD_NANOS;
            }, PERIOD_NANOS, PERIOD_NANOS, TimeUnit.NANOSECONDS);
        }
    }

    /**
     * Once a second, a line of figures for the log: seconds since the probe started, the caller's counts, open files,
     * the largest probe delay of that second, CPU time used, the system's load. Keeps the peak of the open files.
     */
    static final class Timeline implements AutoCloseable {
        private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "soak-timeline");
            t.setDaemon(true);
            return t;
        });
        private volatile long peakOpenFiles;

        Timeline(LoopProbe probe, Supplier<String> counts, PrintStream out) {
            timer.scheduleAtFixedRate(() -> {
                long files = openFileDescriptors();
                peakOpenFiles = Math.max(peakOpenFiles, files);
                out.printf(Locale.ROOT, "%7.1f s  %s  open files %d  probe max %d ms  cpu %d ms  load %s%n",
                        probe.secondsSinceStart(), counts.get(), files, probe.takeWindowMaxDelayMillis(),
                        processCpuMillis(), loadAverage());
            }, 1, 1, TimeUnit.SECONDS);
        }

        long peakOpenFiles() {
            return Math.max(peakOpenFiles, openFileDescriptors());
        }

        @Override
        public void close() {
            timer.shutdownNow();
        }
    }

    /** Heap in use; call {@code System.gc()} first for a figure after GC. */
    static long usedHeap() {
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    /**
     * Live objects per class, as HotSpot's {@code GC.class_histogram} reports them after the full GC it runs: class
     * name to {instances, bytes}. Empty where the diagnostic command is not available.
     */
    static Map<String, long[]> classHistogram() {
        Map<String, long[]> histogram = new HashMap<>();
        String text;
        try {
            text = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcClassHistogram",
                    new Object[] {null}, new String[] {String[].class.getName()});
        } catch (Exception e) {
            return histogram;
        }
        // "   1:         12345        6789012  [B (java.base@17)"
        for (String line : text.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 4 && f[0].endsWith(":")) {
                histogram.put(f[3], new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])});
            }
        }
        return histogram;
    }

    /** The {@code top} classes whose live bytes grew most from {@code before} to {@code after}, as a Markdown table. */
    static String histogramGrowth(Map<String, long[]> before, Map<String, long[]> after, int top) {
        if (before.isEmpty() || after.isEmpty()) {
            return "(no class histogram: HotSpot's DiagnosticCommand MBean is not available)\n";
        }
        List<Map.Entry<String, long[]>> growth = new ArrayList<>();
        for (Map.Entry<String, long[]> e : after.entrySet()) {
            long[] b = before.getOrDefault(e.getKey(), new long[2]);
            growth.add(Map.entry(e.getKey(), new long[] {e.getValue()[0] - b[0], e.getValue()[1] - b[1]}));
        }
        growth.sort((x, y) -> Long.compare(y.getValue()[1], x.getValue()[1]));
        long total = 0;
        for (Map.Entry<String, long[]> e : growth) {
            total += e.getValue()[1];
        }
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "| class | instances added | KiB added |%n| --- | ---: | ---: |%n"));
        for (Map.Entry<String, long[]> e : growth.subList(0, Math.min(top, growth.size()))) {
            sb.append(String.format(Locale.ROOT, "| `%s` | %,d | %,d |%n", e.getKey(), e.getValue()[0],
                    e.getValue()[1] / 1024));
        }
        sb.append(String.format(Locale.ROOT, "| all classes | | %,d |%n", total / 1024));
        return sb.toString();
    }

    /** Sessions held in the session caches of {@code contexts} (each context's {@code SSLSessionContext}). */
    static long cachedSessions(Iterable<SslContext> contexts) {
        long n = 0;
        for (SslContext c : contexts) {
            if (c.sessionContext() != null) {
                n += Collections.list(c.sessionContext().getIds()).size();
            }
        }
        return n;
    }

    /** This process's open-files limit ({@code ulimit -n}). */
    static long maxFileDescriptors() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.UnixOperatingSystemMXBean) {
            return ((com.sun.management.UnixOperatingSystemMXBean) os).getMaxFileDescriptorCount();
        }
        return Long.MAX_VALUE;
    }

    /** CPU time this process used so far, in milliseconds. */
    static long processCpuMillis() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean) {
            return TimeUnit.NANOSECONDS.toMillis(((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime());
        }
        return -1;
    }

    /** The system's load average over the last minute, and its processors. */
    static String loadAverage() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        return String.format(Locale.ROOT, "%.2f (%d CPUs)", os.getSystemLoadAverage(),
                os.getAvailableProcessors());
    }

    /** This process's open files now. */
    static long openFileDescriptors() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.UnixOperatingSystemMXBean) {
            return ((com.sun.management.UnixOperatingSystemMXBean) os).getOpenFileDescriptorCount();
        }
        return -1;
    }
}
