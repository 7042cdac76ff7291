package io.github.gracefultls.probe;

import io.github.gracefultls.testing.TestCertificates;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The probe against in-process Netty servers ({@link DemoServer}) that answer, never answer, or truncate.
 */
@Timeout(60)
class TlsCloseProbeInProcessPeersTest {

    private static EventLoopGroup group;
    private static SslContext jdkServerContext;
    private static SslContext openSslServerContext;
    private static Path caFile;

    @BeforeAll
    static void setUp(@TempDir Path dir) throws Exception {
        group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        jdkServerContext = serverContext(SslProvider.JDK);
        openSslServerContext = serverContext(SslProvider.OPENSSL);
        caFile = TestCertificates.writePemFiles(dir).caCertificate();
    }

    @AfterAll
    static void tearDown() {
        ReferenceCountUtil.release(jdkServerContext);
        ReferenceCountUtil.release(openSslServerContext);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private static SslContext serverContext(SslProvider provider) throws Exception {
        return SslContextBuilder.forServer(TestCertificates.serverKey(), TestCertificates.serverCertificateChain())
                .sslProvider(provider)
                .protocols("TLSv1.3", "TLSv1.2")
                .build();
    }

    /**
     * The probe's timeout where the server answers or closes TCP: one that no answer misses however loaded the
     * machine (the default, 3 s, is what a user wants, not what a test on a busy machine can rely on).
     */
    private static final String ANSWERED_TIMEOUT = "30s";

    private static ProbeRun probe(DemoServer server, String provider, String protocol, String... more) {
        return ProbeRun.against(caFile, server.port(), provider, protocol, more);
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("io.github.gracefultls.probe.ProbeRun#providersAndProtocols")
    void peerThatAnswersCloseNotifyIsCleanAndExitsZero(String provider, String protocol) throws Exception {
        try (DemoServer server = DemoServer.start(group, jdkServerContext, DemoServer.Behaviour.ANSWER)) {
            ProbeRun run = probe(server, provider, protocol, "--timeout", ANSWERED_TIMEOUT);

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("TLSv" + protocol, "provider " + provider.toUpperCase(),
                    "CN=localhost", "verified",
                    "bye(SHUT_RDWR) -> CLOSE_NOTIFY_RECEIVED, initiator LOCAL",
                    "verdict: clean: the server answered our close_notify in ");
            assertThat(run.err()).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("io.github.gracefultls.probe.ProbeRun#providersAndProtocols")
    void silentPeerTimesOutAndExitsOne(String provider, String protocol) throws Exception {
        try (DemoServer server = DemoServer.start(group, openSslServerContext, DemoServer.Behaviour.SILENT)) {
            ProbeRun run = probe(server, provider, protocol, "--timeout", "300ms");

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out()).contains("bye(SHUT_RDWR) -> TIMED_OUT, initiator LOCAL",
                    "verdict: not clean: no close_notify from the server within 300.0ms");
            assertThat(run.err()).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("io.github.gracefultls.probe.ProbeRun#providersAndProtocols")
    void truncatingPeerIsReportedAndExitsOne(String provider, String protocol) throws Exception {
        try (DemoServer server = DemoServer.start(group, jdkServerContext, DemoServer.Behaviour.TRUNCATE)) {
            ProbeRun run = probe(server, provider, protocol, "--timeout", ANSWERED_TIMEOUT);

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out()).contains("bye(SHUT_RDWR) -> TRUNCATED, initiator LOCAL",
                    "at a TLS record boundary",
                    "verdict: not clean: the server closed TCP without answering our close_notify (truncation)");
            assertThat(run.err()).isEmpty();
        }
    }

    /** A server of TLSv1.2 only answers a TLSv1.3-only hello with a protocol_version alert: the probe says what to try. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"jdk", "openssl"})
    void tls13AgainstATls12OnlyServerSuggestsProtocol12(String provider) throws Exception {
        SslContext tls12Only = SslContextBuilder.forServer(TestCertificates.serverKey(),
                TestCertificates.serverCertificateChain()).sslProvider(SslProvider.JDK).protocols("TLSv1.2").build();
        try (DemoServer server = DemoServer.start(group, tls12Only, DemoServer.Behaviour.ANSWER)) {
            ProbeRun run = probe(server, provider, "1.3", "--timeout", ANSWERED_TIMEOUT);

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
            assertThat(run.errLines()).as(run.toString()).singleElement().asString()
                    .startsWith("tls-close-probe: TLS handshake with localhost:" + server.port() + " failed: ")
                    .containsIgnoringCase("protocol_version")
                    .endsWith("(the server does not support TLSv1.3; try --protocol 1.2)");
        } finally {
            ReferenceCountUtil.release(tls12Only);
        }
    }

    @Test
    void jsonReportsTheOutcome() throws Exception {
        try (DemoServer server = DemoServer.start(group, openSslServerContext, DemoServer.Behaviour.TRUNCATE)) {
            ProbeRun run = probe(server, "jdk", "1.3", "--json", "--timeout", ANSWERED_TIMEOUT);

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out().strip()).startsWith("{").endsWith("}").doesNotContain("\n");
            assertThat(run.out()).contains("\"target\":\"localhost:" + server.port() + "\"",
                    "\"protocol\":\"TLSv1.3\"", "\"verified\":true", "\"status\":\"TRUNCATED\"",
                    "\"initiator\":\"LOCAL\"", "\"clean\":false", "\"exitCode\":1");
        }
    }

    @Test
    void untrustedCertificateIsOneLineAndExitsTwo() throws Exception {
        try (DemoServer server = DemoServer.start(group, jdkServerContext, DemoServer.Behaviour.ANSWER)) {
            ProbeRun run = ProbeRun.of("localhost:" + server.port());

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_ERROR);
            assertThat(run.out()).isEmpty();
            assertThat(run.errLines()).as(run.toString()).singleElement().asString()
                    .startsWith("tls-close-probe: TLS handshake with localhost:" + server.port() + " failed: "
                            + "the server's certificate is not trusted");
        }
    }

    @Test
    void insecureSkipsVerification() throws Exception {
        try (DemoServer server = DemoServer.start(group, jdkServerContext, DemoServer.Behaviour.ANSWER)) {
            ProbeRun run = ProbeRun.of("--insecure", "--timeout", ANSWERED_TIMEOUT, "127.0.0.1:" + server.port());

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("not verified (--insecure)");
        }
    }
}
