package io.github.gracefultls;

import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.EventExecutorGroup;

/**
 * Reads time from an executor's clock: Netty 4.2's {@code EventExecutor.ticker()} where it exists, so that
 * {@code EmbeddedChannel.freezeTime()} drives it in tests, and {@link System#nanoTime()} on Netty 4.1.
 */
final class Clocks {

    private static final boolean HAS_TICKER = hasTicker();

    private Clocks() {
    }

    private static boolean hasTicker() {
        try {
            EventExecutorGroup.class.getMethod("ticker");
            return true;
        } catch (NoSuchMethodException | SecurityException e) {
            return false;
        }
    }

    static long nanoTime(EventExecutor executor) {
        // The call to ticker() is linked only when it runs, so this class loads on Netty 4.1 too.
        return HAS_TICKER ? executor.ticker().nanoTime() : System.nanoTime();
    }
}
