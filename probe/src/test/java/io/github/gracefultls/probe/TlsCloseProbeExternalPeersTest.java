package io.github.gracefultls.probe;

import io.github.gracefultls.testing.TestCertificates;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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

    private static TestCertificates.PemFiles pem;
    private static Path gnutlsKey;

    @TempDir
    Path dir;

    @BeforeAll
    static void writeCertificates(@TempDir Path certificates) throws Exception {
        pem = TestCertificates.writePemFiles(certificates);
        gnutlsKey = GnutlsKey.write(certificates);
    }

    static Stream<Arguments> providersAndProtocols() {
        return Stream.of(
                Arguments.of("jdk", "1.2"), Arguments.of("jdk", "1.3"),
                Arguments.of("openssl", "1.2"), Arguments.of("openssl", "1.3"));
    }

    private static ProbeRun probe(int port, String provider, String protocol, String... more) {
        String[] args = Stream.concat(
                Stream.of("--cafile", pem.caCertificate().toString(), "--provider", provider,
                        "--protocol", protocol, "--timeout", "5s", "localhost:" + port),
                Stream.of(more)).toArray(String[]::new);
        return ProbeRun.of(args);
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("providersAndProtocols")
    void gnutlsServAnswersCloseNotify(String provider, String protocol) throws Exception {
        String gnutlsServ = PeerProcess.require("gnutls-serv", "gnutls-bin");
        int port = PeerProcess.freePort();
        try (PeerProcess peer = PeerProcess.start(dir, port, List.of(gnutlsServ, "--echo",
                "--port", String.valueOf(port),
                "--x509certfile", pem.certificate().toString(),
                "--x509keyfile", gnutlsKey.toString()))) {
            ProbeRun run = probe(port, provider, protocol);

            assertThat(run.exitCode()).as("%s%n--- gnutls-serv:%n%s", run, peer.log())
                    .isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("TLSv" + protocol, "verified",
                    "bye(SHUT_RDWR) -> CLOSE_NOTIFY_RECEIVED, initiator LOCAL",
                    "verdict: clean: the server answered our close_notify");
        }
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("providersAndProtocols")
    void opensslSServerAnswersCloseNotify(String provider, String protocol) throws Exception {
        String openssl = PeerProcess.require("openssl", "openssl");
        int port = PeerProcess.freePort();
        try (PeerProcess peer = PeerProcess.start(dir, port, List.of(openssl, "s_server",
                "-accept", "127.0.0.1:" + port,
                "-cert", pem.certificate().toString(),
                "-key", pem.privateKey().toString(),
                "-quiet"))) {
            ProbeRun run = probe(port, provider, protocol, "--json");

            assertThat(run.exitCode()).as("%s%n--- openssl s_server:%n%s", run, peer.log())
                    .isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("\"protocol\":\"TLSv" + protocol + "\"",
                    "\"status\":\"CLOSE_NOTIFY_RECEIVED\"", "\"initiator\":\"LOCAL\"", "\"clean\":true",
                    "\"exitCode\":0");
        }
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("providersAndProtocols")
    void nginxEndsHttpConnectionCloseWithCloseNotify(String provider, String protocol) throws Exception {
        try (PeerProcess peer = nginx()) {
            ProbeRun run = probe(nginxPort, provider, protocol, "--http", "/hello");

            assertThat(run.exitCode()).as("%s%n--- nginx:%n%s", run, peer.log()).isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("TLSv" + protocol,
                    "GET /hello -> HTTP/1.1 200 OK",
                    "the server, after the response -> CLOSE_NOTIFY_RECEIVED, initiator PEER",
                    "verdict: clean: the server sent close_notify before closing TCP");
        }
    }

    @Test
    void nginxDoesNotAnswerCloseNotifyBeforeARequest() throws Exception {
        // nginx (ngx_ssl_handle_recv) sets no_send_shutdown when SSL_read() returns 0: a client that ends the
        // session before any request gets a bare FIN, not close_notify.
        try (PeerProcess peer = nginx()) {
            ProbeRun run = probe(nginxPort, "jdk", "1.3");

            assertThat(run.exitCode()).as("%s%n--- nginx:%n%s", run, peer.log())
                    .isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out()).contains("bye(SHUT_RDWR) -> TRUNCATED, initiator LOCAL",
                    "verdict: not clean: the server closed TCP without answering our close_notify (truncation)");
        }
    }

    private int nginxPort;

    private PeerProcess nginx() throws Exception {
        String nginx = PeerProcess.require("nginx", "nginx");
        nginxPort = PeerProcess.freePort();
        Path prefix = Files.createDirectories(dir.resolve("nginx"));
        String conf = String.join("\n",
                "daemon off;",
                "master_process off;",
                "worker_processes 1;",
                "pid " + prefix.resolve("nginx.pid") + ";",
                "error_log " + prefix.resolve("error.log") + " info;",
                "events { worker_connections 64; }",
                "http {",
                "  access_log off;",
                "  client_body_temp_path " + prefix.resolve("client_body") + ";",
                "  proxy_temp_path " + prefix.resolve("proxy") + ";",
                "  fastcgi_temp_path " + prefix.resolve("fastcgi") + ";",
                "  uwsgi_temp_path " + prefix.resolve("uwsgi") + ";",
                "  scgi_temp_path " + prefix.resolve("scgi") + ";",
                "  server {",
                "    listen 127.0.0.1:" + nginxPort + " ssl;",
                "    ssl_protocols TLSv1.2 TLSv1.3;",
                "    ssl_certificate " + pem.certificate() + ";",
                "    ssl_certificate_key " + pem.privateKey() + ";",
                "    location / { return 200 \"hello from nginx\\n\"; }",
                "  }",
                "}",
                "");
        Path confFile = prefix.resolve("nginx.conf");
        Files.writeString(confFile, conf, StandardCharsets.US_ASCII);
        return PeerProcess.start(dir, nginxPort, List.of(nginx, "-p", prefix.toString(), "-c", confFile.toString(),
                "-e", prefix.resolve("error.log").toString()));
    }
}
