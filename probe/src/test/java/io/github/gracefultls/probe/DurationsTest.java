package io.github.gracefultls.probe;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link Durations}: the forms people type, the messages for what is not a duration, and the printed form. */
class DurationsTest {

    @ParameterizedTest(name = "{0} = {1} ns")
    @CsvSource(delimiter = '=', value = {
            "1.5s = 1500000000",
            "500ms = 500000000",
            "250us = 250000",
            "PT2S = 2000000000",
            "pt0.5s = 500000000",
            "3s = 3000000000",
            "2m = 120000000000",
            "1h = 3600000000000",
            "750ns = 750",
            "0 = 0",
            "0ms = 0",
            "' 1.5S ' = 1500000000",
            "0.0005ms = 500",
            "0.4ns = 0",
            "0.5ns = 1",
    })
    void parsesTheFormsPeopleType(String text, long nanos) {
        assertThat(Durations.parse(text)).isEqualTo(Duration.ofNanos(nanos));
        assertThat(new DurationConverter().convert(text)).isEqualTo(Duration.ofNanos(nanos));
    }

    @ParameterizedTest(name = "''{0}''")
    @ValueSource(strings = {"", "3", "1.5", "3 sec", "s", "1.s", ".5s", "1,5s", "3d", "PT", "P1X", "abc", "1e3ms", "-abc"})
    void rejectsWhatIsNotADurationWithOneMessage(String text) {
        String message = "'" + text + "' is not a duration (expected e.g. 1.5s, 500ms, 250us, PT2S)";
        assertThatThrownBy(() -> Durations.parse(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage(message);
        assertThatThrownBy(() -> new DurationConverter().convert(text))
                .isInstanceOf(CommandLine.TypeConversionException.class)
                .hasMessage(message);
    }

    @ParameterizedTest(name = "''{0}''")
    @ValueSource(strings = {"-1s", "-500ms", "PT-2S", "-PT2S"})
    void rejectsNegativeDurations(String text) {
        String message = "'" + text + "' is negative (expected a duration >= 0)";
        assertThatThrownBy(() -> Durations.parse(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage(message);
        assertThatThrownBy(() -> new DurationConverter().convert(text))
                .isInstanceOf(CommandLine.TypeConversionException.class)
                .hasMessage(message);
    }

    @Test
    void rejectsDurationsTooLongForNanoseconds() {
        assertThatThrownBy(() -> Durations.parse("3000000h"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("'3000000h' is too long a duration");
    }

    @ParameterizedTest(name = "{0} ns -> {1}")
    @CsvSource({
            "0, 0us",
            "499, 0us",
            "500, 1us",
            "850000, 850us",
            "999499, 999us",
            "999500, 1.0ms",
            "13940000, 13.9ms",
            "13950000, 14.0ms",
            "13960000, 14.0ms",
            "999949999, 999.9ms",
            "999950000, 1.0s",
            "2449999999, 2.4s",
            "2450000000, 2.5s",
            "3000000000, 3.0s",
            "-1500000, -1.5ms",
    })
    void printsAsTlsCloseEventDoesRoundedHalfUp(long nanos, String shown) {
        assertThat(Durations.format(nanos)).isEqualTo(shown);
        assertThat(Durations.format(Duration.ofNanos(nanos))).isEqualTo(shown);
    }

    @Test
    void printsWhatItParses() {
        for (String text : new String[] {"850us", "1.2ms", "13.9ms", "2.5s", "60.0s"}) {
            assertThat(Durations.format(Durations.parse(text))).isEqualTo(text);
        }
    }
}
