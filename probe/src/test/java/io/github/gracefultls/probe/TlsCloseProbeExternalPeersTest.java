package io.github.gracefultls.probe;

import io.github.gracefultls.testing.GnutlsKeys;
import io.github.gracefultls.testing.Nginx;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.TestCertificates;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The probe against real TLS servers run as processes: gnutls-serv and openssl s_server answer close_notify; nginx
 * ends an HTTP/1.1 "Connection: close" exchange with close_notify, but closes TCP without answering a client's
 * close_notify that comes before any request.
 */
@Timeout(120)
class TlsCloseProbeExternalPeersTest {

    /** Bound for a peer to start listening. */
    private static final Duration LISTEN = Duration.ofSeconds(30);

    private static TestCertificates.PemFiles pem;
    private static Path gnutlsKey;

    @TempDir
    Path dir;

    @BeforeAll
    static void writeCertificates(@TempDir Path certificates) throws Exception {
        pem = TestCertificates.writePemFiles(certificates);
        gnutlsKey = GnutlsKeys.writeSec1ServerKey(certificates);
    }

    private static ProbeRun probe(int port, String provider, String protocol, String... more) {
        return ProbeRun.against(pem.caCertificate(), port, provider, protocol,
                Stream.concat(Stream.of("--timeout", "30s"), Stream.of(more)).toArray(String[]::new));
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("io.github.gracefultls.probe.ProbeRun#providersAndProtocols")
    void gnutlsServAnswersCloseNotify(String provider, String protocol) throws Exception {
        String gnutlsServ = Peers.require(Peers.Program.GNUTLS_SERV).toString();
        try (PeerProcess peer = PeerProcess.startListening("gnutls-serv", port -> List.of(gnutlsServ, "--echo",
                "--port", String.valueOf(port),
                "--x509certfile", pem.certificate().toString(),
                "--x509keyfile", gnutlsKey.toString()), dir, LISTEN)) {
            ProbeRun run = probe(peer.port(), provider, protocol);

            assertThat(run.exitCode()).as("%s%n--- gnutls-serv:%n%s", run, peer.output())
                    .isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("TLSv" + protocol, "verified",
                    "bye(SHUT_RDWR) -> CLOSE_NOTIFY_RECEIVED, initiator LOCAL",
                    "verdict: clean: the server answered our close_notify");
        }
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("io.github.gracefultls.probe.ProbeRun#providersAndProtocols")
    void opensslSServerAnswersCloseNotify(String provider, String protocol) throws Exception {
        String openssl = Peers.require(Peers.Program.OPENSSL).toString();
        try (PeerProcess peer = PeerProcess.startListening("openssl-s_server", port -> List.of(openssl, "s_server",
                "-accept", "127.0.0.1:" + port,
                "-cert", pem.certificate().toString(),
                "-key", pem.privateKey().toString(),
                "-quiet"), dir, LISTEN)) {
            ProbeRun run = probe(peer.port(), provider, protocol, "--json");

            assertThat(run.exitCode()).as("%s%n--- openssl s_server:%n%s", run, peer.output())
                    .isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("\"protocol\":\"TLSv" + protocol + "\"",
                    "\"status\":\"CLOSE_NOTIFY_RECEIVED\"", "\"initiator\":\"LOCAL\"", "\"clean\":true",
                    "\"exitCode\":0");
        }
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("io.github.gracefultls.probe.ProbeRun#providersAndProtocols")
    void nginxEndsHttpConnectionCloseWithCloseNotify(String provider, String protocol) throws Exception {
        try (PeerProcess peer = nginx()) {
            ProbeRun run = probe(peer.port(), provider, protocol, "--http", "/hello");

            assertThat(run.exitCode()).as("%s%n--- nginx:%n%s", run, peer.output())
                    .isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("TLSv" + protocol,
                    "GET /hello -> HTTP/1.1 200 OK, ", " bytes, headers included",
                    "the server, after the response -> CLOSE_NOTIFY_RECEIVED, initiator PEER",
                    "verdict: clean: the server sent close_notify before closing TCP");
        }
    }

    @Test
    void nginxDoesNotAnswerCloseNotifyBeforeARequest() throws Exception {
        // nginx (ngx_ssl_handle_recv) sets no_send_shutdown when SSL_read() returns 0: a client that ends the
        // session before any request gets a bare FIN, not close_notify.
        try (PeerProcess peer = nginx()) {
            ProbeRun run = probe(peer.port(), "jdk", "1.3");

            assertThat(run.exitCode()).as("%s%n--- nginx:%n%s", run, peer.output())
                    .isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out()).contains("bye(SHUT_RDWR) -> TRUNCATED, initiator LOCAL",
                    "verdict: not clean: the server closed TCP without answering our close_notify (truncation)");
        }
    }

    private PeerProcess nginx() {
        Path prefix = dir.resolve("nginx");
        return Nginx.start(prefix, "", port -> "http {\n"
                + "  access_log off;\n"
                + Nginx.httpTempPaths(prefix)
                + "  server {\n"
                + "    listen 127.0.0.1:" + port + " ssl;\n"
                + "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                + "    ssl_certificate " + pem.certificate() + ";\n"
                + "    ssl_certificate_key " + pem.privateKey() + ";\n"
                + "    location / { return 200 \"hello from nginx\\n\"; }\n"
                + "  }\n"
                + "}\n", LISTEN);
    }
}
