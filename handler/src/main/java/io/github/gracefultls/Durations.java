package io.github.gracefultls;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;

/**
 * Prints durations for people, as {@link TlsCloseEvent#toString()} and the handler's messages show them: whole
 * microseconds below one millisecond ({@code 850us}), tenths of a millisecond below one second ({@code 13.9ms}),
 * tenths of a second above ({@code 2.5s}, {@code 60.0s}). Values are rounded half-up in the unit shown, and a value
 * that rounds up to the next unit is shown in that unit: 999.5 us is {@code 1.0ms}, 999.95 ms is {@code 1.0s}.
 */
final class Durations {

    private static final long NANOS_PER_MICRO = 1_000L;
    private static final long NANOS_PER_TENTH_MILLI = 100_000L;
    private static final long NANOS_PER_TENTH_SECOND = 100_000_000L;

    private Durations() {
    }

    /**
     * Returns {@code nanos} nanoseconds as {@code 850us}, {@code 13.9ms} or {@code 2.5s}.
     *
     * @param nanos the duration in nanoseconds; a negative one is shown with a leading {@code -}
     * @return the duration for people
     */
    static String format(long nanos) {
        return append(new StringBuilder(12), nanos).toString();
    }

    /**
     * Returns {@code d} as {@link #format(long)} does.
     *
     * @param d the duration
     * @return the duration for people
     */
    static String format(Duration d) {
        return append(new StringBuilder(12), d).toString();
    }

    /**
     * Appends {@code nanos} nanoseconds to {@code b} as {@link #format(long)} shows them.
     *
     * @param b the builder to append to
     * @param nanos the duration in nanoseconds
     * @return {@code b}
     */
    static StringBuilder append(StringBuilder b, long nanos) {
        if (nanos < 0) {
            b.append('-');
            nanos = nanos == Long.MIN_VALUE ? Long.MAX_VALUE : -nanos;
        }
        long micros = divideHalfUp(nanos, NANOS_PER_MICRO);
        if (micros < 1_000L) {
            return b.append(micros).append("us");
        }
        long tenthsOfMillis = divideHalfUp(nanos, NANOS_PER_TENTH_MILLI);
        if (tenthsOfMillis < 10_000L) {
            return appendTenths(b, tenthsOfMillis).append("ms");
        }
        return appendTenths(b, divideHalfUp(nanos, NANOS_PER_TENTH_SECOND)).append('s');
    }

    /**
     * Appends {@code d} to {@code b} as {@link #format(long)} shows it, durations too long for a {@code long} of
     * nanoseconds included.
     *
     * @param b the builder to append to
     * @param d the duration
     * @return {@code b}
     */
    static StringBuilder append(StringBuilder b, Duration d) {
        long seconds = d.getSeconds();
        if (seconds > -9_000_000_000L && seconds < 9_000_000_000L) {
            return append(b, d.toNanos());
        }
        BigDecimal s = BigDecimal.valueOf(seconds).add(BigDecimal.valueOf(d.getNano(), 9));
        return b.append(s.setScale(1, RoundingMode.HALF_UP).toPlainString()).append('s');
    }

    /** Returns {@code n / unit} rounded half-up; {@code n >= 0}, {@code unit} even. */
    private static long divideHalfUp(long n, long unit) {
        long q = n / unit;
        return n % unit >= unit / 2 ? q + 1 : q;
    }

    private static StringBuilder appendTenths(StringBuilder b, long tenths) {
        return b.append(tenths / 10).append('.').append(tenths % 10);
    }
}
