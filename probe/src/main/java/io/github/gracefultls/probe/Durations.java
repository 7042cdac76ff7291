package io.github.gracefultls.probe;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parses durations as people type them ({@code 3s}, {@code 500ms}, {@code 1.5s}, {@code 2m}, or ISO-8601
 * {@code PT3S}), and formats them as {@code TlsCloseEvent} does ({@code 850us}, {@code 1.2ms}, {@code 12.3s}).
 */
final class Durations {

    private static final Pattern SIMPLE = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ns|us|ms|s|m|h)");

    private Durations() {
    }

    /**
     * Returns the duration {@code text} denotes.
     *
     * @throws IllegalArgumentException with a message fit for a user if it is not a duration
     */
    static Duration parse(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        Matcher m = SIMPLE.matcher(s);
        if (m.matches()) {
            BigDecimal amount = new BigDecimal(m.group(1));
            BigDecimal nanosPerUnit;
            switch (m.group(2)) {
                case "ns":
                    nanosPerUnit = BigDecimal.ONE;
                    break;
                case "us":
                    nanosPerUnit = BigDecimal.valueOf(1_000L);
                    break;
                case "ms":
                    nanosPerUnit = BigDecimal.valueOf(1_000_000L);
                    break;
                case "s":
                    nanosPerUnit = BigDecimal.valueOf(1_000_000_000L);
                    break;
                case "m":
                    nanosPerUnit = BigDecimal.valueOf(60_000_000_000L);
                    break;
                default:
                    nanosPerUnit = BigDecimal.valueOf(3_600_000_000_000L);
                    break;
            }
            BigDecimal nanos = amount.multiply(nanosPerUnit);
            if (nanos.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
                throw new IllegalArgumentException("'" + text + "' is too long a duration");
            }
            return Duration.ofNanos(nanos.longValue());
        }
        if (s.startsWith("pt") || s.startsWith("p")) {
            try {
                return Duration.parse(s.toUpperCase(Locale.ROOT));
            } catch (DateTimeParseException e) {
                // fall through
            }
        }
        throw new IllegalArgumentException("'" + text + "' is not a duration (expected e.g. 3s, 500ms, 1.5s)");
    }

    /**
     * Returns {@code d} as {@code 850us}, {@code 1.2ms}, {@code 201.4ms} or {@code 12.3s}.
     */
    static String format(Duration d) {
        long nanos = d.toNanos();
        if (nanos < 1_000_000L) {
            return nanos / 1000L + "us";
        }
        if (nanos < 10_000_000_000L) {
            long tenths = nanos / 100_000L;
            return tenths / 10 + "." + tenths % 10 + "ms";
        }
        long tenths = nanos / 100_000_000L;
        return tenths / 10 + "." + tenths % 10 + "s";
    }

    /**
     * Returns a setting as typed: {@code 3s}, {@code 500ms}, else as {@link #format(Duration)}.
     */
    static String formatSetting(Duration d) {
        long nanos = d.toNanos();
        if (nanos % 1_000_000_000L == 0) {
            return nanos / 1_000_000_000L + "s";
        }
        if (nanos % 1_000_000L == 0) {
            return nanos / 1_000_000L + "ms";
        }
        return format(d);
    }

    /**
     * Returns {@code d} in milliseconds with microsecond precision, for JSON.
     */
    static double millis(Duration d) {
        return d.toNanos() / 1000L / 1000.0;
    }
}
