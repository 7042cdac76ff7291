package io.github.gracefultls.probe;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The project's one duration grammar for people, outside the library: parses durations as people type them
 * ({@code 3s}, {@code 500ms}, {@code 1.5s}, {@code 250us}, {@code 2m}, {@code 0}, or ISO-8601 {@code PT3S}) and prints
 * them as {@code TlsCloseEvent.toString()} does: whole microseconds below one millisecond ({@code 850us}), tenths of
 * a millisecond below one second ({@code 13.9ms}), tenths of a second above ({@code 2.5s}), rounded half-up in the
 * unit shown (999.95 ms is {@code 1.0s}).
 *
 * <p>The probe, the example proxy and the benchmarks use this class; the library prints the same way with a
 * package-private copy of {@link #format(long)}, checked against this one by a test.
 */
public final class Durations {

    private static final Pattern SIMPLE = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ns|us|ms|s|m|h)");

    private Durations() {
    }

    /**
     * Returns the duration {@code text} denotes: a decimal number and a unit ({@code ns}, {@code us}, {@code ms},
     * {@code s}, {@code m}, {@code h}), {@code 0}, or an ISO-8601 duration. Case and surrounding blanks are ignored.
     *
     * @param text the text to parse
     * @return the duration, never negative
     * @throws IllegalArgumentException with a message fit for a user if {@code text} is not a duration, or a
     *                                  negative one
     */
    public static Duration parse(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        if (s.equals("0")) {
            return Duration.ZERO;
        }
        Matcher m = SIMPLE.matcher(s);
        if (m.matches()) {
            BigDecimal nanos = new BigDecimal(m.group(1)).multiply(BigDecimal.valueOf(nanosPerUnit(m.group(2))));
            if (nanos.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
                throw new IllegalArgumentException("'" + text + "' is too long a duration");
            }
            return Duration.ofNanos(nanos.setScale(0, RoundingMode.HALF_UP).longValueExact());
        }
        if (s.startsWith("p") || s.startsWith("-p")) {
            Duration d;
            try {
                d = Duration.parse(s.toUpperCase(Locale.ROOT));
            } catch (DateTimeParseException e) {
                throw notADuration(text);
            }
            if (d.isNegative()) {
                throw new IllegalArgumentException("'" + text + "' is negative (expected a duration >= 0)");
            }
            return d;
        }
        if (s.startsWith("-") && SIMPLE.matcher(s.substring(1)).matches()) {
            throw new IllegalArgumentException("'" + text + "' is negative (expected a duration >= 0)");
        }
        throw notADuration(text);
    }

    private static IllegalArgumentException notADuration(String text) {
        return new IllegalArgumentException("'" + text + "' is not a duration (expected e.g. 1.5s, 500ms, 250us, PT2S)");
    }

    private static long nanosPerUnit(String unit) {
        switch (unit) {
            case "ns":
                return 1L;
            case "us":
                return 1_000L;
            case "ms":
                return 1_000_000L;
            case "s":
                return 1_000_000_000L;
            case "m":
                return 60_000_000_000L;
            default:
                return 3_600_000_000_000L;
        }
    }

    /**
     * Returns {@code d} as {@code 850us}, {@code 13.9ms} or {@code 2.5s}, rounded half-up.
     *
     * @param d the duration
     * @return the duration for people
     */
    public static String format(Duration d) {
        long seconds = d.getSeconds();
        if (seconds > -9_000_000_000L && seconds < 9_000_000_000L) {
            return format(d.toNanos());
        }
        BigDecimal s = BigDecimal.valueOf(seconds).add(BigDecimal.valueOf(d.getNano(), 9));
        return s.setScale(1, RoundingMode.HALF_UP).toPlainString() + "s";
    }

    /**
     * Returns {@code nanos} nanoseconds as {@link #format(Duration)} does.
     *
     * @param nanos the duration in nanoseconds; a negative one is shown with a leading {@code -}
     * @return the duration for people
     */
    public static String format(long nanos) {
        StringBuilder b = new StringBuilder(12);
        if (nanos < 0) {
            b.append('-');
            nanos = nanos == Long.MIN_VALUE ? Long.MAX_VALUE : -nanos;
        }
        long micros = divideHalfUp(nanos, 1_000L);
        if (micros < 1_000L) {
            return b.append(micros).append("us").toString();
        }
        long tenthsOfMillis = divideHalfUp(nanos, 100_000L);
        if (tenthsOfMillis < 10_000L) {
            return appendTenths(b, tenthsOfMillis).append("ms").toString();
        }
        return appendTenths(b, divideHalfUp(nanos, 100_000_000L)).append('s').toString();
    }

    /** Returns {@code n / unit} rounded half-up; {@code n >= 0}, {@code unit} even. */
    private static long divideHalfUp(long n, long unit) {
        long q = n / unit;
        return n % unit >= unit / 2 ? q + 1 : q;
    }

    private static StringBuilder appendTenths(StringBuilder b, long tenths) {
        return b.append(tenths / 10).append('.').append(tenths % 10);
    }

    /**
     * Returns {@code d} in milliseconds with microsecond precision, for JSON.
     *
     * @param d the duration
     * @return the duration in milliseconds
     */
    static double millis(Duration d) {
        return d.toNanos() / 1000L / 1000.0;
    }
}
