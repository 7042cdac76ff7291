package io.github.gracefultls.examples.proxy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.InetAddress;
import java.net.ServerSocket;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The proxy's command line, in-process: help, and what stops it at start (exit code 2 and one line on stderr, no
 * stack trace, no usage). A proxy that starts by mistake would run until the timeout.
 */
@Timeout(60)
class TlsTerminatingProxyCommandLineTest {

    @Test
    void helpSaysExactlyWhatIsPassedOnAsClean() {
        ProxyRun run = ProxyRun.of("--help");

        assertThat(run.exitCode()).as(run.toString()).isZero();
        String help = run.out().replaceAll("\\s+", " ");
        assertThat(help).contains("Usage: tls-terminating-proxy",
                "A TLS side that ends without close_notify, or a plain upstream that resets, is passed on as a "
                        + "truncation (a reset), never as a clean end.",
                "a killed one ends with a FIN too: that is passed on as a clean end (close_notify)",
                "Use --upstream-tls where that matters.", "Exit codes:")
                .doesNotContain("never turns a truncated stream into a clean one");
    }

    @Test
    void versionNamesTheTool() {
        ProxyRun run = ProxyRun.of("--version");

        assertThat(run.exitCode()).as(run.toString()).isZero();
        assertThat(run.out()).startsWith("tls-terminating-proxy ");
    }

    @Test
    void unreadablePemIsOneLine() {
        ProxyRun run = ProxyRun.of("--upstream", "127.0.0.1:1", "--cert", "/nonexistent/cert.pem", "--key",
                "/nonexistent/key.pem", "--listen", "127.0.0.1:0");

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsTerminatingProxy.EXIT_USAGE);
        assertThat(run.errLines()).as(run.toString()).singleElement().asString()
                .startsWith("tls-terminating-proxy: cannot set up TLS: ").contains("/nonexistent/cert.pem");
    }

    @Test
    void durationWithoutUnitIsOneLine() {
        ProxyRun run = ProxyRun.of("--upstream", "127.0.0.1:1", "--self-signed", "--half-close-timeout", "5");

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsTerminatingProxy.EXIT_USAGE);
        assertThat(run.errLines()).as(run.toString()).containsExactly("tls-terminating-proxy: Invalid value for "
                + "option '--half-close-timeout': '5' is not a duration (expected e.g. 1.5s, 500ms, 250us, PT2S) "
                + "(see --help)");
        assertThat(run.out()).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"TLSv1.1", "TLSv1", "SSLv3"})
    void protocolTheJdkDisablesIsRefusedAtStart(String protocol) {
        ProxyRun run = ProxyRun.of("--upstream", "127.0.0.1:1", "--self-signed", "--listen", "127.0.0.1:0",
                "--protocols", "TLSv1.2," + protocol);

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsTerminatingProxy.EXIT_USAGE);
        assertThat(run.errLines()).as(run.toString()).singleElement().asString()
                .startsWith("tls-terminating-proxy: --protocols: " + protocol + " is disabled in this JDK "
                        + "(jdk.tls.disabledAlgorithms in java.security); it enables ")
                .contains("TLSv1.2")
                .doesNotContain("Exception");
    }

    @Test
    void protocolTheOpenSslProviderDoesNotEnableIsRefusedAtStart() {
        ProxyRun run = ProxyRun.of("--upstream", "127.0.0.1:1", "--self-signed", "--listen", "127.0.0.1:0",
                "--provider", "openssl", "--protocols", "TLSv1.1");

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsTerminatingProxy.EXIT_USAGE);
        assertThat(run.errLines()).as(run.toString()).singleElement().asString()
                .startsWith("tls-terminating-proxy: --protocols: TLSv1.1 is not enabled by the OPENSSL provider; "
                        + "it enables ");
    }

    @Test
    void unknownProtocolIsRefusedAtStart() {
        ProxyRun run = ProxyRun.of("--upstream", "127.0.0.1:1", "--self-signed", "--listen", "127.0.0.1:0",
                "--protocols", "TLSv1.4");

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsTerminatingProxy.EXIT_USAGE);
        assertThat(run.errLines()).as(run.toString()).singleElement().asString()
                .startsWith("tls-terminating-proxy: --protocols: TLSv1.4 is not a protocol the JDK provider knows");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"auto", "nio"})
    void addressInUseIsOneLine(String transport) throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            String listen = "127.0.0.1:" + taken.getLocalPort();
            ProxyRun run = ProxyRun.of("--upstream", "127.0.0.1:1", "--self-signed", "--listen", listen,
                    "--transport", transport);

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsTerminatingProxy.EXIT_USAGE);
            assertThat(run.errLines()).as(run.toString())
                    .containsExactly("tls-terminating-proxy: cannot listen on " + listen + ": Address already in use");
        }
    }
}
