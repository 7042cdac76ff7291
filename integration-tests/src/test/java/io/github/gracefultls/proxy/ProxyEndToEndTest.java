package io.github.gracefultls.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseRelay;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.examples.proxy.TlsTerminatingProxy;
import io.github.gracefultls.testing.Nginx;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Resources;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Real clients (curl, gnutls-cli, a Netty client) through {@link TlsTerminatingProxy}, in-process, to real or
 * scripted upstreams, and the same endings through nginx's stream proxy for comparison. The comparison table is
 * written to {@code target/proxy-comparison.md}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ProxyEndToEndTest {

    /** Bound on every wait here, longer than {@link #READ_TIMEOUT}: far from any stall of a loaded machine. */
    private static final Duration AWAIT = Duration.ofSeconds(45);
    /** The Netty client's read timeout: the proxy answers, and beats it however loaded the machine. */
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(30);
    /** Bound for nginx to start listening. */
    private static final Duration LISTEN = Duration.ofSeconds(30);
    /** Debian's dynamic stream module (package libnginx-mod-stream); nginx 1.22 has proxy_half_close (1.21.4+). */
    private static final Path NGINX_STREAM_MODULE = Path.of("/usr/lib/nginx/modules/ngx_stream_module.so");
    private static final int LARGE = 64 * 1024 * 1024;
    private static final int BODY = 256 * 1024;
    private static final byte[] HTTP_REQUEST = "GET / HTTP/1.0\r\nHost: upstream\r\n\r\n"
            .getBytes(StandardCharsets.US_ASCII);

    private Path work;
    private TestCertificates.PemFiles pem;
    private EventLoopGroup clientGroup;
    private final Resources perTest = new Resources();
    /** The comparison: row (what the far side did), then column (which proxy), then what was seen. */
    private final Map<String, Map<String, String>> comparison = new TreeMap<>();

    @BeforeAll
    void setUp() throws IOException {
        work = Files.createTempDirectory("proxy-e2e-");
        pem = TestCertificates.writePemFiles(work.resolve("pki"));
        clientGroup = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
    }

    @AfterEach
    void closePerTest() throws Exception {
        perTest.close();
    }

    @AfterAll
    void tearDown() throws Exception {
        try {
            writeComparison();
        } finally {
            clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
            try (Stream<Path> files = Files.walk(work)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    static Stream<Arguments> cells() {
        return Tls.providersAndProtocols();
    }

    // ------------------------------------------------------------------------------------------------------------
    // curl -> proxy -> nginx
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cells")
    void curlDownloadsFromNginxThroughTheProxyIntact(SslProvider provider, String protocol) throws Exception {
        Path www = files();
        PeerProcess nginx = perTest(nginxFileServer(work.resolve("nginx-http-" + provider + protocol), www));
        BlockingQueue<TlsCloseRelay.Outcome> outcomes = new LinkedBlockingQueue<>();
        InProcessProxy proxy = startProxy(outcomes, provider, protocol, nginx.port(), false);

        List<String> downloads = List.of("1k.bin", "64m.bin");
        for (String file : downloads) {
            long start = System.nanoTime();
            Curl curl = curl(proxy.port(), "/" + file, protocol);
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            System.out.printf("curl %s via proxy %s %s: exit %d, %d bytes, %d ms%n", file, provider, protocol,
                    curl.exit, curl.size, millis);
            assertThat(curl.exit).as("curl exit; stderr: %s", curl.stderr).isZero();
            assertThat(sha256(curl.output)).as("SHA-256 of %s", file).isEqualTo(sha256(www.resolve(file)));
        }
        for (int i = 0; i < downloads.size(); i++) {
            TlsCloseRelay.Outcome outcome = awaitOutcome(outcomes);
            assertThat(outcome.isClean()).as("%s", outcome).isTrue();
        }
        awaitNoOpenChannels(proxy);
    }

    // ------------------------------------------------------------------------------------------------------------
    // gnutls-cli half-close -> proxy -> upstream
    // ------------------------------------------------------------------------------------------------------------

    /**
     * gnutls-cli sends its request, then, on stdin EOF, close_notify and FIN ({@code gnutls_bye(SHUT_WR)}). The
     * upstream sees a FIN after the whole request, then responds. The response reaches gnutls-cli only where the
     * frontend's engine can write after the client's close_notify (JDK, TLSv1.3); the others answer close_notify at
     * once (the engine table in docs/engines.md), and gnutls-cli ends with nothing more.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cells")
    void gnutlsCliHalfCloseReachesTheUpstreamAndItsResponseComesBack(SslProvider provider, String protocol)
            throws Exception {
        String request = "request from gnutls-cli\n";
        String response = "RESPONSE after your half-close\n";
        ScriptedUpstream upstream = perTest(new ScriptedUpstream(false, conn -> {
            String end = conn.readToEnd();
            String got = conn.received.toString(StandardCharsets.US_ASCII);
            String after;
            try {
                conn.write(response.getBytes(StandardCharsets.US_ASCII));
                after = conn.endCleanly();
            } catch (IOException e) {
                after = "RESET (" + e.getMessage() + ")";
            }
            return end + " after " + got.length() + " bytes: " + got.strip() + "; then " + after;
        }));
        BlockingQueue<TlsCloseRelay.Outcome> outcomes = new LinkedBlockingQueue<>();
        InProcessProxy proxy = startProxy(outcomes, provider, protocol, upstream.port(), false);
        PeerProcess cli = perTest(PeerProcess.start("gnutls-cli", List.of(
                Peers.require(Peers.Program.GNUTLS_CLI).toString(),
                "--x509cafile", pem.caCertificate().toString(), "--port", String.valueOf(proxy.port()),
                TestCertificates.HOSTNAME), work));

        cli.writeStdin(request);
        cli.closeStdin();

        int exit = cli.awaitExit(AWAIT);
        String seen = upstream.awaitResult(AWAIT);
        assertThat(seen).as("what the upstream saw").startsWith("FIN after " + request.length() + " bytes: "
                + request.strip());
        assertThat(exit).as("gnutls-cli exit; stderr: %s", cli.stderr()).isZero();
        assertThat(cli.stdout()).as("gnutls-cli saw our close_notify")
                .contains("- Peer has closed the GnuTLS connection");
        TlsCloseRelay.Outcome outcome = awaitOutcome(outcomes);
        if (provider == SslProvider.JDK && Tls.TLS_1_3.equals(protocol)) {
            assertThat(cli.stdout()).as("the response, after the client's half-close").contains(response);
            assertThat(cli.stdout().indexOf(response))
                    .isLessThan(cli.stdout().indexOf("- Peer has closed the GnuTLS connection"));
            assertThat(seen).endsWith("then FIN");
            assertThat(outcome.isClean()).as("%s", outcome).isTrue();
        } else {
            // The engine limitation: the response cannot follow; the upstream's write is answered by a reset.
            assertThat(cli.stdout()).doesNotContain(response);
            assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.CLEAN);
        }
        awaitNoOpenChannels(proxy);
    }

    // ------------------------------------------------------------------------------------------------------------
    // How endings cross a proxy: ours and nginx's stream proxy side by side
    // ------------------------------------------------------------------------------------------------------------

    /** What the far side does. */
    enum Ending {
        PLAIN_UPSTREAM_FIN("plain upstream: response, then FIN (a clean end)", false, false),
        PLAIN_UPSTREAM_RESET("plain upstream: half the response, then RST", false, true),
        TLS_UPSTREAM_CLOSE_NOTIFY("TLS upstream: response, then close_notify and FIN", true, false),
        TLS_UPSTREAM_DROPS_TCP("TLS upstream: half the response, then FIN without close_notify", true, true),
        CLIENT_DROPS_TCP("client: half a request, then FIN without close_notify", false, true);

        final String description;
        final boolean tlsUpstream;
        final boolean truncation;

        Ending(String description, boolean tlsUpstream, boolean truncation) {
            this.description = description;
            this.tlsUpstream = tlsUpstream;
            this.truncation = truncation;
        }
    }

    /** Which proxy. */
    enum Via {
        OURS_JDK("TlsTerminatingProxy (JDK)"),
        OURS_OPENSSL("TlsTerminatingProxy (OpenSSL)"),
        NGINX("nginx 1.22 stream, proxy_half_close on");

        final String column;

        Via(String column) {
            this.column = column;
        }
    }

    static Stream<Arguments> endingsAndProxies() {
        return Stream.of(Ending.values()).flatMap(e -> Stream.of(Via.values()).map(v -> Arguments.of(e, v)));
    }

    @ParameterizedTest(name = "{0} via {1}")
    @MethodSource("endingsAndProxies")
    void endingsAsSeenAcrossTheProxy(Ending ending, Via via) throws Exception {
        ScriptedUpstream upstream = perTest(new ScriptedUpstream(ending.tlsUpstream, conn -> {
            if (ending == Ending.CLIENT_DROPS_TCP) {
                return conn.readToEnd();
            }
            conn.readUntil("\r\n\r\n");
            conn.write(httpResponse(ending.truncation ? BODY / 2 : BODY));
            switch (ending) {
                case PLAIN_UPSTREAM_RESET:
                    conn.reset();
                    return "RST sent";
                case TLS_UPSTREAM_DROPS_TCP:
                    conn.dropTcp();
                    return "FIN sent";
                default:
                    return conn.endCleanly();
            }
        }));
        BlockingQueue<TlsCloseRelay.Outcome> outcomes = new LinkedBlockingQueue<>();
        int port;
        SslProvider clientProvider = via == Via.OURS_OPENSSL ? SslProvider.OPENSSL : SslProvider.JDK;
        if (via == Via.NGINX) {
            port = perTest(nginxStreamProxy(work.resolve("nginx-stream-" + ending), upstream.port(),
                    ending.tlsUpstream)).port();
        } else {
            port = startProxy(outcomes, clientProvider, null, upstream.port(), ending.tlsUpstream).port();
        }

        if (ending == Ending.CLIENT_DROPS_TCP) {
            NettyClient client = nettyClient(clientProvider, port, "GET / HTTP/1.0\r\n".getBytes(
                    StandardCharsets.US_ASCII), true);
            String upstreamSaw = upstream.awaitResult(AWAIT);
            record(ending, via, "upstream sees " + upstreamSaw);
            if (via != Via.NGINX) {
                assertThat(upstreamSaw).as("the upstream sees an abort, not a clean end").isEqualTo("RESET");
                TlsCloseRelay.Outcome outcome = awaitOutcome(outcomes);
                assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
                assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
            }
            assertThat(client.rec.receivedBytes()).isEmpty();
            return;
        }

        NettyClient client = nettyClient(clientProvider, port, HTTP_REQUEST, false);
        upstream.awaitResult(AWAIT);
        Curl curl = curl(port, "/", null);
        upstream.awaitResult(AWAIT);
        int body = Math.max(0, client.rec.receivedBytes().length - httpResponse(0).length);
        record(ending, via, "Netty client: " + client.event.status() + " (" + body + " B body); curl: exit "
                + curl.exit + " (" + curl.size + " B)");
        if (via == Via.NGINX) {
            return; // recorded, for docs/proxy.md
        }
        if (ending.truncation) {
            assertThat(client.event.status()).as("the Netty client's view: %s", client.event)
                    .isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(curl.exit).as("curl must fail; stderr: %s", curl.stderr).isNotZero();
        } else {
            assertThat(client.event.status()).as("the Netty client's view: %s", client.event)
                    .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(body).isEqualTo(BODY);
            assertThat(curl.exit).as("curl exit; stderr: %s", curl.stderr).isZero();
            assertThat(curl.size).isEqualTo(BODY);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    private InProcessProxy startProxy(BlockingQueue<TlsCloseRelay.Outcome> outcomes, SslProvider provider,
                                      String protocol, int upstreamPort, boolean upstreamTls) throws Exception {
        return perTest(InProcessProxy.start(outcomes::add, pem, provider, protocol, upstreamPort, upstreamTls));
    }

    /** nginx serving the files of {@code www} over plain HTTP. */
    private static PeerProcess nginxFileServer(Path directory, Path www) {
        return Nginx.start(directory, "", port -> "http {\n"
                + "  access_log off;\n"
                + "  default_type application/octet-stream;\n"
                + Nginx.httpTempPaths(directory)
                + "  server { listen 127.0.0.1:" + port + "; root " + www + "; }\n"
                + "}\n", LISTEN);
    }

    /** nginx as a TLS-terminating stream proxy ({@code proxy_half_close on}) to 127.0.0.1:{@code upstreamPort}. */
    private PeerProcess nginxStreamProxy(Path directory, int upstreamPort, boolean upstreamTls)
            throws InterruptedException {
        String loadModule = "";
        if (!nginxHasStaticStreamModule()) {
            Peers.requireFile(NGINX_STREAM_MODULE, "nginx stream module", "libnginx-mod-stream");
            loadModule = "load_module " + NGINX_STREAM_MODULE + ";\n";
        }
        return Nginx.start(directory, loadModule, port -> "stream {\n"
                + "  server {\n"
                + "    listen 127.0.0.1:" + port + " ssl;\n"
                + "    ssl_certificate " + pem.certificate() + ";\n"
                + "    ssl_certificate_key " + pem.privateKey() + ";\n"
                + "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                + "    proxy_pass 127.0.0.1:" + upstreamPort + ";\n"
                + "    proxy_half_close on;\n"
                + (upstreamTls ? "    proxy_ssl on;\n    proxy_ssl_verify off;\n" : "")
                + "  }\n"
                + "}\n", LISTEN);
    }

    private boolean nginxHasStaticStreamModule() throws InterruptedException {
        try (PeerProcess p = PeerProcess.start("nginx-V", List.of(Peers.require(Peers.Program.NGINX).toString(),
                "-V"), work)) {
            p.awaitExit(LISTEN);
            String configure = p.stderr();
            return configure.contains("--with-stream ") || configure.endsWith("--with-stream\n");
        }
    }

    private <T extends AutoCloseable> T perTest(T resource) {
        return perTest.add(resource);
    }

    /** nginx's document root: 1k.bin and 64m.bin, random bytes, written once. */
    private Path files() throws IOException {
        Path www = work.resolve("www");
        if (!Files.exists(www.resolve("64m.bin"))) {
            Files.createDirectories(www);
            Random random = new Random(42);
            byte[] small = new byte[1024];
            random.nextBytes(small);
            Files.write(www.resolve("1k.bin"), small);
            byte[] large = new byte[LARGE];
            random.nextBytes(large);
            Files.write(www.resolve("64m.bin"), large);
        }
        return www;
    }

    private static byte[] httpResponse(int bodyLength) {
        // HTTP/1.0 without Content-Length: the body ends with the connection, so only the closure tells a
        // complete body from a cut one.
        byte[] head = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
                .getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[head.length + bodyLength];
        System.arraycopy(head, 0, out, 0, head.length);
        for (int i = head.length; i < out.length; i++) {
            out[i] = (byte) ('a' + i % 26);
        }
        return out;
    }

    private record Curl(int exit, long size, String stderr, Path output) {
    }

    private Curl curl(int port, String path, String protocol) throws Exception {
        Path output = Files.createTempFile(work, "curl-", ".out");
        List<String> command = new ArrayList<>(List.of(Peers.require(Peers.Program.CURL).toString(), "-sS",
                "--cacert", pem.caCertificate().toString(), "-o", output.toString()));
        if (Tls.TLS_1_2.equals(protocol)) {
            command.addAll(List.of("--tlsv1.2", "--tls-max", "1.2"));
        } else if (Tls.TLS_1_3.equals(protocol)) {
            command.add("--tlsv1.3");
        }
        command.add("https://127.0.0.1:" + port + path);
        try (PeerProcess curl = PeerProcess.start("curl", command, work)) {
            int exit = curl.awaitExit(AWAIT);
            return new Curl(exit, Files.size(output), curl.stderr().strip(), output);
        }
    }

    private static final class NettyClient {
        final RecordingHandler rec = RecordingHandler.swallowingExceptions();
        TlsCloseEvent event;
    }

    /** A Netty TLS client (TLSv1.3): sends {@code request}, then waits for its TlsCloseEvent, or truncates. */
    private NettyClient nettyClient(SslProvider provider, int port, byte[] request, boolean truncate)
            throws Exception {
        NettyClient client = new NettyClient();
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(READ_TIMEOUT)
                .build();
        Channel ch = new Bootstrap()
                .group(clientGroup)
                .channel(NioSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast(Tls.clientContext(provider, Tls.TLS_1_3).newHandler(ch.alloc()));
                        ch.pipeline().addLast(handler);
                        ch.pipeline().addLast(client.rec);
                    }
                })
                .connect(InetAddress.getLoopbackAddress(), port).sync().channel();
        perTest(() -> ch.close().await(5, TimeUnit.SECONDS));
        ch.pipeline().get(SslHandler.class).handshakeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        ch.writeAndFlush(Unpooled.wrappedBuffer(request)).get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        if (truncate) {
            TlsSockets.closeBelowTls(ch, AWAIT); // FIN without close_notify
            return client;
        }
        client.event = handler.closeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        ch.closeFuture().await(AWAIT.toMillis());
        return client;
    }

    private synchronized void record(Ending ending, Via via, String seen) {
        System.out.printf("%s via %s: %s%n", ending, via, seen);
        comparison.computeIfAbsent(ending.ordinal() + " " + ending.description, k -> new TreeMap<>())
                .put(via.ordinal() + " " + via.column, seen);
    }

    private void writeComparison() throws IOException {
        if (comparison.isEmpty()) {
            return;
        }
        StringBuilder md = new StringBuilder("| the far side | ");
        for (Via via : Via.values()) {
            md.append(via.column).append(" | ");
        }
        md.append("\n| --- |").append(" --- |".repeat(Via.values().length)).append('\n');
        comparison.forEach((row, cells) -> {
            md.append("| ").append(row.substring(row.indexOf(' ') + 1)).append(" | ");
            for (Via via : Via.values()) {
                md.append(cells.getOrDefault(via.ordinal() + " " + via.column, "-")).append(" | ");
            }
            md.append('\n');
        });
        Path target = Path.of(System.getProperty("interop.target", "target"));
        Files.createDirectories(target);
        Files.writeString(target.resolve("proxy-comparison.md"), md);
        System.out.print(md);
    }

    private static TlsCloseRelay.Outcome awaitOutcome(BlockingQueue<TlsCloseRelay.Outcome> outcomes)
            throws InterruptedException {
        TlsCloseRelay.Outcome outcome = outcomes.poll(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(outcome).as("a relay outcome within %s", AWAIT).isNotNull();
        return outcome;
    }

    /** Every relay has an outcome, so its channels are closed; the channel group learns it just after. */
    static void awaitNoOpenChannels(InProcessProxy proxy) {
        long deadline = System.nanoTime() + AWAIT.toNanos();
        while (proxy.openChannels() > 0) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError(proxy.openChannels() + " proxy channels still open");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
        }
    }

    private static String sha256(Path file) throws Exception {
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest)) {
            in.transferTo(OutputStream.nullOutputStream());
        }
        return HexFormat.of().formatHex(digest.digest());
    }
}
