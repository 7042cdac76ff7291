package io.github.gracefultls;

import io.netty.util.concurrent.AbstractScheduledEventExecutor;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.EventExecutorGroup;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * Reads time from an executor's clock, the one its scheduled tasks follow, so that
 * {@code EmbeddedChannel.freezeTime()} and {@code advanceTimeBy()} drive it in tests:
 * {@code EventExecutor.ticker().nanoTime()} on Netty 4.2, {@code AbstractScheduledEventExecutor.getCurrentTimeNanos()}
 * (protected, read reflectively) on Netty 4.1, and {@link System#nanoTime()} where neither can be read. Both are
 * looked up reflectively, so that this class compiles and loads against either line.
 */
final class Clocks {

    private static final InternalLogger logger = InternalLoggerFactory.getInstance(Clocks.class);

    /** Netty 4.2: {@code (EventExecutor) -> executor.ticker().nanoTime()}, or null. */
    private static final MethodHandle TICKER_NANO_TIME = tickerNanoTime();
    /** Netty 4.1: {@code (AbstractScheduledEventExecutor) -> executor.getCurrentTimeNanos()}, or null. */
    private static final MethodHandle CURRENT_TIME_NANOS = TICKER_NANO_TIME == null ? currentTimeNanos() : null;

    private Clocks() {
    }

    private static MethodHandle tickerNanoTime() {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            Class<?> ticker = EventExecutorGroup.class.getMethod("ticker").getReturnType();
            MethodHandle getTicker = lookup.findVirtual(EventExecutorGroup.class, "ticker",
                    MethodType.methodType(ticker));
            MethodHandle nanoTime = lookup.findVirtual(ticker, "nanoTime", MethodType.methodType(long.class));
            return MethodHandles.filterReturnValue(getTicker, nanoTime)
                    .asType(MethodType.methodType(long.class, EventExecutor.class));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null; // Netty 4.1
        }
    }

    private static MethodHandle currentTimeNanos() {
        try {
            MethodHandles.Lookup lookup = MethodHandles.privateLookupIn(AbstractScheduledEventExecutor.class,
                    MethodHandles.lookup());
            return lookup.findVirtual(AbstractScheduledEventExecutor.class, "getCurrentTimeNanos",
                    MethodType.methodType(long.class));
        } catch (ReflectiveOperationException | RuntimeException e) {
            logger.debug("Cannot read the event loop's clock; elapsed times follow System.nanoTime(), "
                    + "not EmbeddedChannel.freezeTime()", e);
            return null;
        }
    }

    static long nanoTime(EventExecutor executor) {
        try {
            if (TICKER_NANO_TIME != null) {
                return (long) TICKER_NANO_TIME.invokeExact(executor);
            }
            if (CURRENT_TIME_NANOS != null && executor instanceof AbstractScheduledEventExecutor) {
                return (long) CURRENT_TIME_NANOS.invokeExact((AbstractScheduledEventExecutor) executor);
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        return System.nanoTime();
    }
}
