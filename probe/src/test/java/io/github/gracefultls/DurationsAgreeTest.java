package io.github.gracefultls;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The library prints durations with its package-private {@code Durations}, everything else with the probe's public
 * one: this test, in the library's package, holds them to one grammar, at every unit's boundary and on random values.
 */
class DurationsAgreeTest {

    @Test
    void theLibraryAndTheProbePrintAlikeAtEveryRoundingBoundary() {
        long[] units = {1_000L, 100_000L, 100_000_000L};
        for (long unit : units) {
            for (long k = 0; k < 12_000; k++) {
                for (long nanos : new long[] {k * unit + unit / 2 - 1, k * unit + unit / 2, k * unit}) {
                    assertAgree(nanos);
                }
            }
        }
        assertAgree(Long.MAX_VALUE);
        assertAgree(Long.MIN_VALUE);
        assertThat(Durations.format(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999)))
                .isEqualTo(io.github.gracefultls.probe.Durations.format(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999)));
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3})
    void theLibraryAndTheProbePrintAlikeOnRandomValues(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < 20_000; i++) {
            long nanos = random.nextLong(0, 1L << (1 + random.nextInt(62)));
            assertAgree(random.nextBoolean() ? nanos : -nanos);
        }
    }

    private static void assertAgree(long nanos) {
        assertThat(io.github.gracefultls.probe.Durations.format(nanos)).as("%d ns", nanos)
                .isEqualTo(Durations.format(nanos));
    }
}
