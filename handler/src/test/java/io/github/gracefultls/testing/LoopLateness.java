package io.github.gracefultls.testing;

import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import org.junit.jupiter.api.Assumptions;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * How late the tasks of one event loop run while a test waits on a real-time deadline: a 10 ms task at a fixed
 * delay, like the soak's probe, recording how long after its due time each run began.
 *
 * <p>A test that bounds a real time from above (a timeout that fires "at the deadline, within a bound after it",
 * a closure that ends "well under" its deadline) bounds it by {@link #allow(Duration) bound + the lateness measured
 * on the same loop over the same span}. On an idle machine that is the bound itself; on a loaded one, a closure that
 * is late because its event loop did not run is not taken for a closure that is late because of the handler. When
 * the lateness extends a bound noticeably, a line says so on standard output: a slow machine is reported, not
 * failed. The probe runs on the loop whose timers the test measures: the channel's own. Where a slow machine
 * would change the outcome itself (a step that must come before a deadline came after it), the case is skipped with
 * its reason ({@link #skipBecauseLate}), never passed or failed on a claim it could not test.
 *
 * <pre>
 * try (LoopLateness late = LoopLateness.watch(channel.eventLoop())) {
 *     ... begin the closure, wait for its event ...
 *     assertThat(event.elapsed()).isLessThan(late.allow(DEADLINE.plus(BOUND)));
 * }
 * </pre>
 */
public final class LoopLateness implements AutoCloseable {

    private static final long PERIOD_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    /** Lateness below this, in milliseconds, is not worth a line. */
    private static final long WORTH_REPORTING_MILLIS = 100;

    private final AtomicLong maxNanos = new AtomicLong();
    private final ScheduledFuture<?> task;
    private volatile long dueAt;
    /** When {@link #close()} stopped the probe; 0 while it runs. */
    private volatile long stoppedAt;

    private LoopLateness(EventExecutor loop) {
        dueAt = System.nanoTime() + PERIOD_NANOS;
        task = loop.scheduleWithFixedDelay(() -> {
            long now = System.nanoTime();
            maxNanos.accumulateAndGet(now - dueAt, Math::max);
            // Fixed delay: the next run is due one period after this one; its delay is how late a due task ran.
            dueAt = System.nanoTime() + PERIOD_NANOS;
        }, PERIOD_NANOS, PERIOD_NANOS, TimeUnit.NANOSECONDS);
    }

    /** Starts measuring on {@code loop}; {@link #close()} stops. */
    public static LoopLateness watch(EventExecutor loop) {
        return new LoopLateness(loop);
    }

    /**
     * The largest delay of the probe task so far, counting a run that is due and has not begun yet (a loop stalled
     * right now) up to this moment, or up to {@link #close()}.
     */
    public Duration max() {
        long stopped = stoppedAt;
        long overdue = (stopped != 0 ? stopped : System.nanoTime()) - dueAt;
        return Duration.ofNanos(Math.max(0, Math.max(maxNanos.get(), overdue)));
    }

    /**
     * Returns {@code bound} plus the lateness measured so far ({@link #max()}); says so on standard output when
     * that lateness is {@value #WORTH_REPORTING_MILLIS} ms or more.
     */
    public Duration allow(Duration bound) {
        Duration late = max();
        if (late.toMillis() >= WORTH_REPORTING_MILLIS) {
            System.out.printf("[machine late] event loop tasks ran up to %d ms late: a bound of %d ms allows %d ms%n",
                    late.toMillis(), bound.toMillis(), bound.plus(late).toMillis());
        }
        return bound.plus(late);
    }

    /**
     * Ends the running test as skipped, with a line on standard output: the machine was too slow for the case to
     * prove its claim (a step that had to come before a deadline came after it). Call it only after asserting what
     * the case proves regardless.
     */
    public static void skipBecauseLate(String what) {
        System.out.println("[machine late] " + what + ": the case is skipped, not failed");
        Assumptions.abort("machine late: " + what);
    }

    /** Stops the probe. */
    @Override
    public void close() {
        if (stoppedAt == 0) {
            stoppedAt = System.nanoTime();
        }
        task.cancel(false);
    }
}
