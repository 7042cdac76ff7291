package io.github.gracefultls;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/** The immutable settings of a {@link GracefulTlsCloseHandler}, shared by the handlers a builder makes. */
final class Settings {

    static final Settings DEFAULT = new Settings(
            TimeUnit.MILLISECONDS.toNanos(GracefulTlsCloseHandler.DEFAULT_CLOSE_NOTIFY_FLUSH_TIMEOUT_MILLIS),
            TimeUnit.MILLISECONDS.toNanos(GracefulTlsCloseHandler.DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS),
            0, PeerClosePolicy.CLOSE, false);

    final long flushTimeoutNanos;
    final long readTimeoutNanos;
    /** Zero: no deadline. */
    final long halfCloseTimeoutNanos;
    final PeerClosePolicy peerClosePolicy;
    /** Application data during a SHUT_RDWR wait ends the closure FAILED instead of being released and counted. */
    final boolean failOnDataAfterCloseNotify;

    Settings(long flushTimeoutNanos, long readTimeoutNanos, long halfCloseTimeoutNanos,
             PeerClosePolicy peerClosePolicy, boolean failOnDataAfterCloseNotify) {
        this.flushTimeoutNanos = flushTimeoutNanos;
        this.readTimeoutNanos = readTimeoutNanos;
        this.halfCloseTimeoutNanos = halfCloseTimeoutNanos;
        this.peerClosePolicy = peerClosePolicy;
        this.failOnDataAfterCloseNotify = failOnDataAfterCloseNotify;
    }

    boolean sameAs(long flushTimeoutNanos, long readTimeoutNanos, long halfCloseTimeoutNanos,
                   PeerClosePolicy peerClosePolicy, boolean failOnDataAfterCloseNotify) {
        return this.flushTimeoutNanos == flushTimeoutNanos && this.readTimeoutNanos == readTimeoutNanos
                && this.halfCloseTimeoutNanos == halfCloseTimeoutNanos && this.peerClosePolicy == peerClosePolicy
                && this.failOnDataAfterCloseNotify == failOnDataAfterCloseNotify;
    }

    /** A timeout that must be positive, in nanoseconds, saturated; fails naming the argument. */
    static long positive(Duration timeout, String name) {
        Objects.requireNonNull(timeout, name);
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException(name + ": " + timeout + " (expected: > 0)");
        }
        return toNanos(timeout);
    }

    /** A timeout that may be zero, in nanoseconds, saturated; fails naming the argument. */
    static long notNegative(Duration timeout, String name) {
        Objects.requireNonNull(timeout, name);
        if (timeout.isNegative()) {
            throw new IllegalArgumentException(name + ": " + timeout + " (expected: >= 0)");
        }
        return toNanos(timeout);
    }

    private static long toNanos(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }
}
