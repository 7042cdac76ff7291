package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.netty.channel.Channel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.pkitesting.X509Bundle;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.http.server.HttpServer;

import javax.net.ssl.SSLException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Reactor Netty's {@code HttpServer} with SNI mappings ({@code SslProvider.Builder.addSniMapping}): two host names,
 * each with its own certificate, and the handler wired as in the plain case ({@link ReactorNettyTlsClose#apply}),
 * after the {@code SniHandler} Reactor Netty puts in place. curl asks for each name ({@code --resolve}), verifies the
 * certificate against it, and gets a response naming the certificate the server used; the server's outcome is read
 * per connection, next to that name.
 */
class ReactorNettySniTest {

    private static final String ALPHA = "alpha.test";
    private static final String BETA = "beta.test";
    private static final Duration WAIT = Duration.ofSeconds(45);
    private static final Duration DEADLINE = Duration.ofSeconds(30);

    /** Per server channel: the TLS closure's outcome. */
    private final Map<Channel, CompletableFuture<TlsCloseEvent>> outcomes = new ConcurrentHashMap<>();
    private final List<Runnable> cleanup = new ArrayList<>();
    private Path work;

    @AfterEach
    void tearDown() throws Exception {
        for (int i = cleanup.size() - 1; i >= 0; i--) {
            cleanup.get(i).run();
        }
    }

    private CompletableFuture<TlsCloseEvent> outcome(Channel channel) {
        return outcomes.computeIfAbsent(channel, c -> new CompletableFuture<>());
    }

    private static SslContext context(String host, SslProvider provider, String protocol) {
        X509Bundle bundle = TestCertificates.serverFor(host);
        try {
            return Tls.serverContextBuilder(provider, protocol)
                    .keyManager(bundle.getKeyPair().getPrivate(), bundle.getCertificatePath()).build();
        } catch (SSLException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The subject of the certificate our side of {@code channel} presented. */
    private static String localSubject(Channel channel) {
        SslHandler ssl = channel.pipeline().get(SslHandler.class);
        return ((X509Certificate) ssl.engine().getSession().getLocalCertificates()[0]).getSubjectX500Principal()
                .getName();
    }

    private void deleteWork() {
        try (java.util.stream.Stream<Path> paths = Files.walk(work)) {
            for (Path p : (Iterable<Path>) paths.sorted(java.util.Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void eachHostNameGetsItsCertificateAndEachConnectionItsOutcome(SslProvider provider, String protocol)
            throws Exception {
        SslContext defaultContext = Tls.serverContext(provider, protocol);
        SslContext alpha = context(ALPHA, provider, protocol);
        SslContext beta = context(BETA, provider, protocol);
        Map<String, Channel> channelByHost = new ConcurrentHashMap<>();
        ReactorNettyTlsClose module = ReactorNettyTlsClose.builder()
                .handler(() -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(DEADLINE).build())
                .onClose(c -> outcome(c.channel()).complete(c.event()))
                .build();
        DisposableServer server = module.apply(HttpServer.create()
                .host("127.0.0.1")
                .port(0)
                .secure(spec -> spec.sslContext(defaultContext)
                        .addSniMapping(ALPHA, s -> s.sslContext(alpha))
                        .addSniMapping(BETA, s -> s.sslContext(beta))))
                .route(routes -> routes.get("/who", (req, res) -> {
                    String[] subject = new String[1];
                    req.withConnection(c -> {
                        subject[0] = localSubject(c.channel());
                        channelByHost.put(req.requestHeaders().get("host").replaceAll(":.*", ""), c.channel());
                    });
                    return res.keepAlive(false).sendString(Mono.just(subject[0] + "\n"));
                }))
                .bindNow(WAIT);
        cleanup.add(() -> server.disposeNow(WAIT));
        work = Files.createTempDirectory("reactor-sni-");
        cleanup.add(this::deleteWork);
        Path ca = TestCertificates.writePemFiles(work.resolve("pki")).caCertificate();

        String version = Tls.TLS_1_3.equals(protocol) ? "1.3" : "1.2";
        for (String host : List.of(ALPHA, BETA)) {
            PeerProcess curl = PeerProcess.start("curl", List.of(Peers.require(Peers.Program.CURL).toString(),
                    "--silent", "--show-error", "--http1.1", "--tlsv" + version, "--tls-max", version,
                    "--cacert", ca.toString(), "--resolve", host + ":" + server.port() + ":127.0.0.1",
                    "--max-time", "25", "https://" + host + ":" + server.port() + "/who"), work);
            cleanup.add(curl::close);
            assertThat(curl.awaitExit(WAIT)).as("curl exit status for %s; stderr: %s", host, curl.stderr()).isZero();
            // curl verified the certificate against the name; the server says which one it presented.
            assertThat(curl.stdout()).isEqualTo("CN=" + host + ",O=graceful-tls-close tests\n");

            Channel channel = channelByHost.get(host);
            assertThat(channel).as("the server channel that served %s", host).isNotNull();
            TlsCloseEvent event = outcome(channel).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            // keepAlive(false): Reactor Netty closes the connection after the response, curl answers our
            // close_notify.
            assertThat(event.status()).as("%s: %s", host, event).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(event.initiator()).as("%s: %s", host, event).isEqualTo(TlsCloseInitiator.LOCAL);
            assertThat(event.mode()).as("%s: %s", host, event).isEqualTo(TlsCloseMode.SHUT_RDWR);
        }
        assertThat(outcomes).hasSize(2);
    }
}
