package io.github.gracefultls.probe;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

@Timeout(60)
class TlsCloseProbeDemoTest {

    private static final String[][] EXPECTED = {
            {"close()", "CLOSE_NOTIFY_RECEIVED"},
            {"shutdownOutput()", "CLOSE_NOTIFY_RECEIVED"},
            {"peer truncates", "TRUNCATED"},
            {"peer never answers", "TIMED_OUT"},
            {"bye() + plaintext", "CLOSE_NOTIFY_RECEIVED"},
    };

    @Test
    void demoEndsEveryClosureAsSpecifiedAndExitsZero() {
        ProbeRun run = ProbeRun.of();

        assertThat(run.exitCode()).as(run.toString()).isZero();
        assertThat(run.err()).as(run.toString()).isEmpty();
        assertThat(run.out()).contains("case", "provider", "protocol", "status", "initiator", "time");
        for (String provider : new String[] {"JDK", "OPENSSL"}) {
            for (String protocol : new String[] {"TLSv1.2", "TLSv1.3"}) {
                for (String[] expected : EXPECTED) {
                    Pattern row = Pattern.compile("(?m)^" + Pattern.quote(expected[0]) + "\\s+" + provider + "\\s+"
                            + Pattern.quote(protocol) + "\\s+" + expected[1] + "\\s+LOCAL\\s+\\S+\\s+ok\\b.*$");
                    assertThat(run.out()).as(run.toString()).containsPattern(row);
                }
            }
        }
        assertThat(run.out()).contains("plaintext echoed", "FIN at a record boundary", "no close_notify in 200.0ms");
        assertThat(run.out()).containsPattern("(?m)^verdict: OK: all 20 closures ended as the spec says$");
    }

    @Test
    void demoRunsOnlyTheProviderAndProtocolAskedFor() {
        ProbeRun run = ProbeRun.of("--provider", "jdk", "--protocol", "1.3", "--json");

        assertThat(run.exitCode()).as(run.toString()).isZero();
        assertThat(run.out().split("\"case\":", -1)).as(run.toString()).hasSize(EXPECTED.length + 1);
        assertThat(run.out()).contains("\"provider\":\"JDK\"", "\"protocol\":\"TLSv1.3\"", "\"ok\":true")
                .doesNotContain("OPENSSL", "TLSv1.2", "\"ok\":false");
    }

    @Test
    void demoRejectsProbeOnlyOptions() {
        ProbeRun run = ProbeRun.of("--http", "/");

        assertThat(run.exitCode()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
        assertThat(run.errLines()).as(run.toString()).singleElement().asString().contains("--http needs HOST:PORT");
    }
}
