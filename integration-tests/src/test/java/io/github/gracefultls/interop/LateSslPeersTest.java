package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.handler.ssl.OptionalSslHandler;
import io.netty.handler.ssl.SniCompletionEvent;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.DomainWildcardMappingBuilder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Real clients against our server when the handler sits after {@code SniHandler} (two host names, each with its own
 * certificate, and {@code localhost} by default) or {@code OptionalSslHandler} (TLS or plaintext on one port): curl
 * with {@code --resolve} for each name, {@code openssl s_client -servername}, {@code gnutls-cli --sni-hostname}, a
 * Netty client, and Python's {@code ssl} cutting a record in the middle. Each client checks the certificate it got
 * (curl and gnutls-cli verify the name; the subject is read from their output); our side says which name it served.
 */
class LateSslPeersTest extends InteropTest {

    static final String ALPHA = "alpha.test";
    static final String BETA = "beta.test";
    private static final String BODY = "served over TLS\n";
    private static final String RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
            + BODY;
    private static final Duration EXIT = Duration.ofSeconds(30);
    private static final int CUT_AT = 10;
    private static final AtomicInteger IDS = new AtomicInteger();
    private static final Map<List<Object>, SslContext> CONTEXTS = new ConcurrentHashMap<>();

    /** NIO and epoll with each provider and protocol: 8 cells. */
    static Stream<Cell> nioAndEpoll() {
        return Cell.all().filter(c -> c.transport() != Transport.IO_URING);
    }

    private static SslContext context(String host, Cell cell) {
        return CONTEXTS.computeIfAbsent(List.of(host, cell.provider(), cell.protocol()), k -> {
            X509Bundle bundle = TestCertificates.serverFor(host);
            try {
                return Tls.serverContextBuilder(cell.provider().sslProvider(), cell.protocol())
                        .keyManager(bundle.getKeyPair().getPrivate(), bundle.getCertificatePath()).build();
            } catch (SSLException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    /** One accepted connection: our handler, the SNI name our server saw, the application's recorder. */
    record Conn(GracefulTlsCloseHandler handler, CompletableFuture<String> sni, RecordingHandler rec) {
        TlsCloseEvent awaitEvent() throws Exception {
            return handler.closeFuture().get(LONG_TIMEOUT.plus(AWAIT).toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    /** Our server: {@code late} puts the SslHandler in place, {@code app} answers. */
    private final class Server implements AutoCloseable {
        final BlockingQueue<Conn> accepted = new LinkedBlockingQueue<>();
        final Channel channel;

        Server(Cell cell, Supplier<ChannelHandler> late, Supplier<ChannelHandler> app) throws Exception {
            channel = new ServerBootstrap().group(loops.group(cell.transport()))
                    .channel(cell.transport().serverChannelClass())
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childHandler(new ChannelInitializer<>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            Conn conn = new Conn(GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT)
                                    .build(), new CompletableFuture<>(), RecordingHandler.swallowingExceptions());
                            ch.pipeline().addLast("late", late.get());
                            ch.pipeline().addLast("tls-close", conn.handler);
                            ch.pipeline().addLast("sni-seen", new ChannelInboundHandlerAdapter() {
                                @Override
                                public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                                    if (evt instanceof SniCompletionEvent) {
                                        conn.sni.complete(((SniCompletionEvent) evt).hostname());
                                    }
                                    ctx.fireUserEventTriggered(evt);
                                }
                            });
                            ch.pipeline().addLast("app", app.get());
                            ch.pipeline().addLast("rec", conn.rec);
                            accepted.add(conn);
                        }
                    }).bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
        }

        int port() {
            return ((InetSocketAddress) channel.localAddress()).getPort();
        }

        Conn awaitAccepted() throws InterruptedException {
            Conn conn = accepted.poll(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
            assertThat(conn).as("a connection accepted").isNotNull();
            return conn;
        }

        @Override
        public void close() throws Exception {
            channel.close().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    /** SniHandler: alpha.test and beta.test have their own certificates, any other name gets localhost's. */
    private Server sniServer(Cell cell, Apps.Then then) throws Exception {
        byte[] response = RESPONSE.getBytes(StandardCharsets.US_ASCII);
        return perTest(new Server(cell, () -> new SniHandler(new DomainWildcardMappingBuilder<>(cell.serverContext())
                .add(ALPHA, context(ALPHA, cell)).add(BETA, context(BETA, cell)).build()),
                () -> new Apps.RespondToLineThenClose("\r\n\r\n", response, then)));
    }

    private static String subjectOf(String host) {
        X509Certificate cert = TestCertificates.serverFor(host).getCertificate();
        return cert.getSubjectX500Principal().getName();
    }

    // ------------------------------------------------------------------------------------------------------------
    // SniHandler
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void curlGetsEachHostsCertificateAndAGracefulClose(Cell cell) throws Exception {
        Server server = sniServer(cell, Apps.Then.CLOSE);
        for (String host : List.of(ALPHA, BETA)) {
            Path output = workDirectory.resolve("curl-" + System.nanoTime() + ".txt");
            String version = cell.isTls13() ? "1.3" : "1.2";
            // --verbose prints the subject; verification (on by default) checks the name against the certificate.
            PeerProcess curl = perTest(PeerProcess.start("curl", List.of(Peers.require(Peers.Program.CURL).toString(),
                    "--silent", "--show-error", "--verbose", "--http1.1", "--tlsv" + version, "--tls-max", version,
                    "--cacert", pem.caCertificate().toString(), "--resolve", host + ":" + server.port() + ":127.0.0.1",
                    "--max-time", "25", "--output", output.toString(), "https://" + host + ":" + server.port() + "/"),
                    workDirectory));
            Conn ours = server.awaitAccepted();
            int exit = curl.awaitExit(EXIT);
            TlsCloseEvent event = ours.awaitEvent();

            InteropReport.observe(host + ": curl exit " + exit + "; " + describe(event));
            assertThat(exit).as("curl exit status; stderr: %s", curl.stderr()).isZero();
            assertThat(curl.stderr()).as("the certificate curl got").contains(
                    "subject: O=graceful-tls-close tests; CN=" + host).contains("host \"" + host + "\" matched");
            assertThat(ours.sni().getNow(null)).isEqualTo(host);
            assertThat(Files.readString(output)).isEqualTo(BODY);
            assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
            assertThat(ours.rec().exceptions()).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("nioAndEpoll")
    void opensslSClientWithServername(Cell cell) throws Exception {
        Server server = sniServer(cell, Apps.Then.CLOSE);
        PeerProcess client = perTest(PeerProcess.start("openssl-s_client", List.of(
                Peers.require(Peers.Program.OPENSSL).toString(), "s_client", "-connect", "127.0.0.1:" + server.port(),
                "-servername", BETA, "-verify_hostname", BETA, "-verify_return_error", "-CAfile",
                pem.caCertificate().toString(), "-ign_eof", cell.isTls13() ? "-tls1_3" : "-tls1_2"), workDirectory));
        client.writeStdin("GET / HTTP/1.1\r\nHost: " + BETA + "\r\n\r\n");
        client.closeStdin(); // -ign_eof: s_client reads on until our close_notify

        Conn ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();
        int exit = client.awaitExit(EXIT);

        InteropReport.observe("openssl s_client exit " + exit + "; " + describe(event));
        assertThat(exit).as("s_client exit status; stderr: %s", client.stderr()).isZero();
        assertThat(client.stdout()).as("the certificate s_client got").contains(
                "subject=O = graceful-tls-close tests, CN = " + BETA).contains("Verified peername: " + BETA)
                .contains(BODY.trim()).contains("Verification: OK");
        assertThat(ours.sni().getNow(null)).isEqualTo(BETA);
        // s_client answers our close_notify before it closes.
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(ours.rec().exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("nioAndEpoll")
    void gnutlsCliWithSniHostname(Cell cell) throws Exception {
        Server server = sniServer(cell, Apps.Then.NOTHING);
        String priority = "NORMAL:-VERS-ALL:" + (cell.isTls13() ? "+VERS-TLS1.3" : "+VERS-TLS1.2");
        PeerProcess cli = perTest(PeerProcess.start("gnutls-cli", List.of(
                Peers.require(Peers.Program.GNUTLS_CLI).toString(), "--x509cafile", pem.caCertificate().toString(),
                "--priority", priority, "--sni-hostname", ALPHA, "--verify-hostname", ALPHA,
                "--port", String.valueOf(server.port()), "127.0.0.1"), workDirectory));
        cli.writeStdin("GET / HTTP/1.1\r\nHost: " + ALPHA + "\r\n\r\n");
        Conn ours = server.awaitAccepted();
        cli.awaitStdout(BODY.trim(), AWAIT);
        cli.closeStdin(); // gnutls_bye(GNUTLS_SHUT_WR): the peer begins

        TlsCloseEvent event = ours.awaitEvent();
        int exit = cli.awaitExit(EXIT);

        InteropReport.observe("gnutls-cli exit " + exit + "; " + describe(event));
        assertThat(exit).as("gnutls-cli exit status; stderr: %s", cli.stderr()).isZero();
        assertThat(cli.output()).as("the certificate gnutls-cli got").contains("subject `CN=" + ALPHA);
        assertThat(ours.sni().getNow(null)).isEqualTo(ALPHA);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        assertThat(ours.rec().exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("nioAndEpoll")
    void nettyClientWithSniClosesCleanly(Cell cell) throws Exception {
        Server server = sniServer(cell, Apps.Then.NOTHING);
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT)
                .build();
        SslContext context = Tls.clientContextBuilder(cell.provider().sslProvider(), cell.protocol()).build();
        SslHandler[] ssl = new SslHandler[1];
        Channel ch = new Bootstrap().group(loops.group(cell.transport())).channel(cell.transport().channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel c) {
                        ssl[0] = context.newHandler(c.alloc(), BETA, server.port()); // BETA goes out as SNI
                        c.pipeline().addLast("ssl", ssl[0]);
                        c.pipeline().addLast("tls-close", handler);
                    }
                }).connect(InetAddress.getLoopbackAddress(), server.port()).sync().channel();
        perTest(() -> ch.close().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS));
        ssl[0].handshakeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        Conn ours = server.awaitAccepted();
        X509Certificate got = (X509Certificate) ssl[0].engine().getSession().getPeerCertificates()[0];

        ch.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        TlsCloseEvent clientEvent = handler.closeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        TlsCloseEvent serverEvent = ours.awaitEvent();

        InteropReport.observe("client " + describe(clientEvent) + "; server " + describe(serverEvent));
        assertThat(got.getSubjectX500Principal().getName()).isEqualTo(subjectOf(BETA));
        assertThat(ours.sni().getNow(null)).isEqualTo(BETA);
        assertEvent(clientEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL,
                TlsCloseMode.SHUT_RDWR);
        assertEvent(serverEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
    }

    /** Python's ssl sends "HELLO", then the first bytes of a record, then FIN: the cut is reported as such. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("nioAndEpoll")
    void truncationInsideARecordBehindSniHandlerIsReportedAsSuch(Cell cell) throws Exception {
        Server server = sniServer(cell, Apps.Then.NOTHING);
        String id = "sni" + IDS.incrementAndGet();
        PeerProcess client = perTest(PeerProcess.start("python-client", List.of(Peers.requirePython().toString(),
                PEERS_DIRECTORY.resolve("tls_peer.py").toString(), "client", "--scenario", "truncate-inside-record",
                "--port", String.valueOf(server.port()), "--ca", pem.caCertificate().toString(),
                "--protocol", cell.protocol(), "--size", String.valueOf(CUT_AT), "--id", id), workDirectory));
        Conn ours = server.awaitAccepted();

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(cause.isInsideRecord()).as("%s", cause).isTrue();
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(CUT_AT);
        assertThat(ours.sni().getNow(null)).isEqualTo(TestCertificates.HOSTNAME);
        assertThat(ours.rec().receivedString()).isEqualTo("HELLO " + id + "\n");
        client.awaitStdout(id + " done=1", AWAIT);
        assertThat(client.stdout()).as("we still said goodbye").contains(id + " peer-end=close_notify");
        assertThat(ours.rec().exceptions()).isEmpty();
    }

    // ------------------------------------------------------------------------------------------------------------
    // OptionalSslHandler
    // ------------------------------------------------------------------------------------------------------------

    /** One port, TLS or plaintext: curl over https gets a graceful close, curl over http is served, no event. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void curlOverTlsAndPlaintextThroughOptionalSslHandler(Cell cell) throws Exception {
        byte[] response = RESPONSE.getBytes(StandardCharsets.US_ASCII);
        Server server = perTest(new Server(cell, () -> new OptionalSslHandler(cell.serverContext()),
                () -> new Apps.RespondToLineThenClose("\r\n\r\n", response, Apps.Then.CLOSE)));
        String curl = Peers.require(Peers.Program.CURL).toString();
        String version = cell.isTls13() ? "1.3" : "1.2";
        String authority = TestHost.NAME + ":" + server.port();

        PeerProcess tls = perTest(PeerProcess.start("curl-https", List.of(curl, "--silent", "--show-error",
                "--http1.1", "--tlsv" + version, "--tls-max", version, "--cacert", pem.caCertificate().toString(),
                "--resolve", authority + ":127.0.0.1", "--max-time", "25", "https://" + authority + "/"),
                workDirectory));
        Conn overTls = server.awaitAccepted();
        assertThat(tls.awaitExit(EXIT)).as("curl https; stderr: %s", tls.stderr()).isZero();
        assertThat(tls.stdout()).isEqualTo(BODY);
        TlsCloseEvent event = overTls.awaitEvent();
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);

        PeerProcess plain = perTest(PeerProcess.start("curl-http", List.of(curl, "--silent", "--show-error",
                "--http1.1", "--resolve", authority + ":127.0.0.1", "--max-time", "25", "http://" + authority + "/"),
                workDirectory));
        Conn overPlaintext = server.awaitAccepted();
        assertThat(plain.awaitExit(EXIT)).as("curl http; stderr: %s", plain.stderr()).isZero();
        assertThat(plain.stdout()).isEqualTo(BODY);
        overPlaintext.rec().awaitInactive(AWAIT);
        assertThatThrownBy(() -> overPlaintext.handler().closeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS))
                .isInstanceOf(ExecutionException.class).cause().isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("not TLS");
        assertThat(overPlaintext.rec().eventsOfType(TlsCloseEvent.class)).as("no event over plaintext").isEmpty();
        assertThat(overPlaintext.rec().exceptions()).as("nothing at the tail").isEmpty();
        assertThat(overTls.rec().exceptions()).isEmpty();
        InteropReport.observe("https: " + describe(event) + "; http: served, no event, closeFuture failed: not TLS");
    }
}
