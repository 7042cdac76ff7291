package io.github.gracefultls.gateway;

import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.gateway.ScriptedUpstream.End;
import io.github.gracefultls.gateway.ScriptedUpstream.Framing;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.TlsSockets;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Spring Cloud Gateway with TLS on both sides, with {@link GracefulTlsGatewayConfiguration} (the module on the
 * frontend and on the upstream client) and without it (the same TLS, nothing else), in front of a
 * {@link ScriptedUpstream} that ends cleanly or cuts a Content-Length or close-delimited response. Through the
 * gateway, a Netty client ({@link GatewayClient}) and curl: with the module, a clean end gives every byte and a cut
 * one never reaches the client as complete; without it, what the gateway does is asserted as measured (the "before"
 * in docs/spring-cloud-gateway.md).
 */
class SpringCloudGatewayTlsCloseTest {

    private static final Duration AWAIT = Duration.ofSeconds(30);
    private static final byte[] BODY = TlsSockets.payload(ScriptedUpstream.BODY_LENGTH);

    private static EventLoopGroup group;
    private static ScriptedUpstream upstream;
    private static GatewayApplication.Running withModule;
    private static GatewayApplication.Running withoutModule;
    private static GatewayApplication.Running withModuleTlsFromProperties;
    private static TestCertificates.PemFiles pem;

    @BeforeAll
    static void start(@TempDir Path dir) throws Exception {
        group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        upstream = new ScriptedUpstream(group, BODY);
        withModule = GatewayApplication.start(upstream.uri(), true);
        withoutModule = GatewayApplication.start(upstream.uri(), false);
        pem = TestCertificates.writePemFiles(dir);
        withModuleTlsFromProperties = GatewayApplication.startWithTlsProperties(upstream.uri(), pem);
    }

    @AfterAll
    static void stop() throws Exception {
        if (withModule != null) {
            withModule.close();
        }
        if (withoutModule != null) {
            withoutModule.close();
        }
        if (withModuleTlsFromProperties != null) {
            withModuleTlsFromProperties.close();
        }
        if (upstream != null) {
            upstream.close();
        }
        if (group != null) {
            group.shutdownGracefully(0, 0, java.util.concurrent.TimeUnit.SECONDS).sync();
        }
    }

    static Stream<Arguments> cases() {
        return Stream.of(Framing.values()).flatMap(f -> Stream.of(End.values()).map(e -> Arguments.of(f, e)));
    }

    static Stream<Arguments> curlCases() {
        return Stream.of("--http1.1", "--http1.0").flatMap(v -> cases().map(a -> Arguments.of(a.get()[0], a.get()[1],
                v)));
    }

    static Stream<Arguments> tlsConfigurationsAndCases() {
        return Stream.of("customizers", "properties").flatMap(t -> cases().map(a -> Arguments.of(a.get()[0],
                a.get()[1], t)));
    }

    @ParameterizedTest(name = "TLS from {2}: {0} {1}")
    @MethodSource("tlsConfigurationsAndCases")
    void nettyClientThroughTheGatewayWithTheModule(Framing framing, End end, String tlsFrom) throws Exception {
        GracefulTlsGatewayConfiguration.CLOSURES.clear();
        int port = tlsFrom.equals("customizers") ? withModule.port() : withModuleTlsFromProperties.port();
        GatewayClient.Received received = GatewayClient.get(group, port, ScriptedUpstream.path(framing, end), AWAIT);
        System.out.printf("with the module, TLS from %s, %s %s: %s%n", tlsFrom, framing, end, received);
        if (end == End.CLEAN) {
            assertThat(received.complete()).as("%s", received).isTrue();
            assertThat(received.status()).isEqualTo(200);
            assertThat(received.body()).isEqualTo(BODY);
        } else {
            assertThat(received.complete()).as("%s", received).isFalse();
            // The gateway's upstream side saw the cut inside the response (its listener, through the module).
            assertThat(GracefulTlsGatewayConfiguration.CLOSURES).anySatisfy(c -> {
                assertThat(c.event().status()).isEqualTo(TlsCloseStatus.TRUNCATED);
                assertThat(c.event().isMessageCut()).isTrue();
            });
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void nettyClientThroughTheGatewayWithoutTheModule(Framing framing, End end) throws Exception {
        GatewayClient.Received received = GatewayClient.get(group, withoutModule.port(),
                ScriptedUpstream.path(framing, end), AWAIT);
        System.out.printf("without the module, %s %s: %s%n", framing, end, received);
        if (end == End.CLEAN) {
            assertThat(received.complete()).as("%s", received).isTrue();
            assertThat(received.body()).isEqualTo(BODY);
        } else if (framing == Framing.CONTENT_LENGTH) {
            // Reactor Netty's client fails a short Content-Length body (PrematureCloseException) by itself.
            assertThat(received.complete()).as("%s", received).isFalse();
        } else {
            // The cut close-delimited body goes on chunked, and ends with a final chunk: complete, half of it.
            assertThat(received.complete()).as("%s", received).isTrue();
            assertThat(received.body()).hasSize(ScriptedUpstream.SENT);
        }
    }

    @ParameterizedTest(name = "{2} {0} {1}")
    @MethodSource("curlCases")
    void curlThroughTheGatewayWithTheModule(Framing framing, End end, String http, @TempDir Path dir)
            throws Exception {
        int exit = curl(withModule.port(), framing, end, http, dir);
        Path output = dir.resolve("body");
        System.out.printf("curl %s, with the module, %s %s: exit %d, %d bytes%n", http, framing, end, exit,
                Files.size(output));
        if (end == End.CLEAN) {
            assertThat(exit).isZero();
            assertThat(Files.readAllBytes(output)).isEqualTo(BODY);
        } else {
            assertThat(exit).isNotZero();
            assertThat(Files.size(output)).isLessThan(BODY.length);
        }
    }

    @ParameterizedTest(name = "{2} {0} {1}")
    @MethodSource("curlCases")
    void curlThroughTheGatewayWithoutTheModule(Framing framing, End end, String http, @TempDir Path dir)
            throws Exception {
        int exit = curl(withoutModule.port(), framing, end, http, dir);
        Path output = dir.resolve("body");
        System.out.printf("curl %s, without the module, %s %s: exit %d, %d bytes%n", http, framing, end, exit,
                Files.size(output));
        if (end == End.CLEAN) {
            assertThat(exit).isZero();
            assertThat(Files.readAllBytes(output)).isEqualTo(BODY);
        } else if (framing == Framing.CONTENT_LENGTH) {
            assertThat(exit).as("curl's exit code: transfer closed with data outstanding").isEqualTo(18);
        } else {
            // The cut close-delimited body, complete to curl.
            assertThat(exit).isZero();
            assertThat(Files.size(output)).isEqualTo(ScriptedUpstream.SENT);
        }
    }

    private static int curl(int port, Framing framing, End end, String http, Path dir) throws Exception {
        String curl = Peers.require(Peers.Program.CURL).toString();
        Path output = dir.resolve("body");
        Files.createFile(output);
        try (PeerProcess p = PeerProcess.start("curl", List.of(curl, "--silent", "--show-error", http,
                "--cacert", pem.caCertificate().toString(), "--resolve", TestCertificates.HOSTNAME + ":" + port
                        + ":127.0.0.1", "--max-time", "20", "--output", output.toString(),
                "--dump-header", dir.resolve("head").toString(),
                "https://" + TestCertificates.HOSTNAME + ":" + port + ScriptedUpstream.path(framing, end)), dir)) {
            int exit = p.awaitExit(AWAIT);
            System.out.printf("curl %s %s: %s%n", http, ScriptedUpstream.path(framing, end),
                    Files.readString(dir.resolve("head")).replace("\r\n", " | "));
            return exit;
        }
    }
}
