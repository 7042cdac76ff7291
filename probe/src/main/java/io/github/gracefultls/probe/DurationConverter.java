package io.github.gracefultls.probe;

import picocli.CommandLine;

import java.time.Duration;

/**
 * Converts a picocli option value with {@link Durations#parse(String)}: {@code 1.5s}, {@code 500ms}, {@code 250us},
 * {@code 0}, {@code PT2S}. A bad value is reported with the parser's message, for example
 * {@code '3 sec' is not a duration (expected e.g. 1.5s, 500ms, 250us, PT2S)}.
 */
public class DurationConverter implements CommandLine.ITypeConverter<Duration> {

    @Override
    public Duration convert(String value) {
        try {
            return Durations.parse(value);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException(e.getMessage());
        }
    }
}
