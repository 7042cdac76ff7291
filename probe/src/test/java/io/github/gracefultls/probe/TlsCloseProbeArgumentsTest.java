package io.github.gracefultls.probe;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Bad arguments and unreachable or non-TLS servers: exit code 2 and one line on stderr, no stack trace.
 */
@Timeout(60)
class TlsCloseProbeArgumentsTest {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
            "--bogus",
            "--timeout 3x localhost:443",
            "--timeout 0s localhost:443",
            "--timeout",
            "--protocol 1.1 localhost:443",
            "--provider gnutls localhost:443",
            "localhost:443 extra",
            "localhost:99999",
            "localhost:https",
            ":443",
            "::1:443",
            "[::1:443",
            "--insecure --cafile ca.pem localhost:443",
            "--cafile /nonexistent/ca.pem localhost:443",
            "--http no-slash localhost:443",
            "--insecure",
            "--timeout 1s",
    })
    void badArgumentsExitTwoWithOneLine(String args) {
        ProbeRun run = ProbeRun.of(args.split(" "));

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
        assertThat(run.errLines()).as(run.toString()).singleElement().asString()
                .startsWith("tls-close-probe: ")
                .doesNotContain("Exception");
        assertThat(run.out()).as(run.toString()).isEmpty();
    }

    @Test
    void closedPortExitsTwoWithOneLine() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        ProbeRun run = ProbeRun.of("--timeout", "2s", "127.0.0.1:" + port);

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
        assertThat(run.errLines()).as(run.toString()).containsExactly(
                "tls-close-probe: cannot connect to 127.0.0.1:" + port + ": Connection refused");
        assertThat(run.out()).isEmpty();
    }

    @Test
    void unresolvableHostExitsTwoWithOneLine() {
        ProbeRun run = ProbeRun.of("--timeout", "2s", "no-such-host.invalid:443");

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
        assertThat(run.errLines()).as(run.toString())
                .containsExactly("tls-close-probe: cannot resolve host 'no-such-host.invalid'");
    }

    @Test
    void serverThatDoesNotSpeakTlsExitsTwoWithOneLine() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Thread plaintext = new Thread(() -> {
                try (Socket s = server.accept()) {
                    InputStream in = s.getInputStream();
                    in.read(new byte[1024]); // the ClientHello
                    OutputStream out = s.getOutputStream();
                    out.write("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"
                            .getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                    in.read(new byte[1024]);
                } catch (IOException e) {
                    // the probe hung up
                }
            });
            plaintext.start();
            ProbeRun run = ProbeRun.of("--timeout", "2s", "127.0.0.1:" + server.getLocalPort());
            plaintext.join(5000);

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
            assertThat(run.errLines()).as(run.toString()).containsExactly("tls-close-probe: TLS handshake with 127.0.0.1:"
                    + server.getLocalPort() + " failed: the server did not answer with TLS");
        }
    }

    @Test
    void verboseAddsTheStackTrace() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        ProbeRun run = ProbeRun.of("--verbose", "127.0.0.1:" + port);

        assertThat(run.exitCode()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
        assertThat(run.errLines().get(0)).startsWith("tls-close-probe: cannot connect to");
        assertThat(run.err()).contains("\tat ");
    }

    @Test
    void jsonErrorIsAnObject() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        ProbeRun run = ProbeRun.of("--json", "127.0.0.1:" + port);

        assertThat(run.exitCode()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
        assertThat(run.errLines()).hasSize(1);
        assertThat(run.out().strip()).isEqualTo("{\"target\":\"127.0.0.1:" + port + "\",\"error\":\"cannot connect to "
                + "127.0.0.1:" + port + ": Connection refused\",\"exitCode\":2}");
    }

    @Test
    void httpWithoutPathSaysThatThePathIsMissing() {
        // The target right after --http is read as its PATH: say so, not "--http needs HOST:PORT".
        ProbeRun run = ProbeRun.of("--http", "example.com:443");

        assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
        assertThat(run.errLines()).as(run.toString()).containsExactly("tls-close-probe: --http needs a PATH, then "
                + "HOST:PORT (--http / example.com:443); 'example.com:443' was read as the path, and HOST:PORT is "
                + "missing");
        assertThat(run.out()).isEmpty();
    }

    @Test
    void helpSaysTheByteCountIncludesHeaders() {
        ProbeRun help = ProbeRun.of("--help");

        assertThat(help.out().replaceAll("\\s+", " ")).contains("its size (in bytes, headers included)");
    }

    @Test
    void helpAndVersionExitZero() {
        ProbeRun help = ProbeRun.of("--help");
        ProbeRun version = ProbeRun.of("--version");

        assertThat(help.exitCode()).isZero();
        assertThat(help.out()).contains("Usage: tls-close-probe", "HOST:PORT", "--http", "--insecure", "--cafile",
                "--protocol", "--provider", "--timeout", "--json", "--verbose", "Exit codes:");
        assertThat(version.exitCode()).isZero();
        assertThat(version.out()).startsWith("tls-close-probe ");
    }
}
