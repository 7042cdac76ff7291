package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.testing.Nginx;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.TestCertificates;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.ReferenceCountUtil;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.text.MessageFormat;
import java.util.List;
import java.util.ResourceBundle;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The proxy's log line per connection, through the proxy's own pieces in-process, to scripted TLS upstreams (JDK,
 * TLSv1.3, whose engine does not answer close_notify by itself): the level, and that it says what happened.
 */
@Timeout(120)
class ProxyOutcomeLogTest {

    /** Bound on every wait: far beyond the relay's drain period (3 s) on a loaded machine. */
    private static final long AWAIT_SECONDS = 60;
    private static final byte[] RESPONSE = "response from the upstream\n".getBytes(StandardCharsets.US_ASCII);

    private static EventLoopGroup group;
    private static SslContext upstreamServerContext;
    private static SslContext proxyServerContext;

    @BeforeAll
    static void setUp() throws Exception {
        group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        upstreamServerContext = SslContextBuilder.forServer(TestCertificates.serverKey(),
                TestCertificates.serverCertificateChain()).sslProvider(SslProvider.JDK).protocols("TLSv1.3").build();
        proxyServerContext = ProxySslContexts.selfSignedServer(SslProvider.JDK, List.of("TLSv1.3"));
    }

    @AfterAll
    static void tearDown() {
        ReferenceCountUtil.release(upstreamServerContext);
        ReferenceCountUtil.release(proxyServerContext);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    /**
     * The upstream sends its response, then answers our close_notify with a bare FIN, as nginx does: INFO, and the
     * sentence that says so.
     */
    @Test
    void upstreamThatClosesTcpAfterOurCloseNotifyIsInfo() throws Exception {
        Logged logged = relayOnce(trustingUpstream(), true, ch -> {
            // Once our close_notify is in, close below TLS: a FIN, no close_notify of its own.
            ch.pipeline().get(SslHandler.class).sslCloseFuture().addListener(f -> closeBelowTls(ch));
        });

        assertThat(logged.level).as(logged.message).isEqualTo(System.Logger.Level.INFO);
        assertThat(logged.message).contains("backend closed TCP without answering our close_notify (after our "
                + "close; at a record boundary); TlsCloseRelay.Outcome(frontend CLEAN ",
                "backend TRUNCATED TlsCloseEvent(TRUNCATED, LOCAL, SHUT_WR, ");
    }

    /**
     * nginx as the TLS upstream of an HTTP/1.1 keep-alive exchange: the client reads the response and closes; nginx
     * answers our close_notify with a bare FIN. INFO, not the WARNING every such close used to be.
     */
    @Test
    void nginxUpstreamClosingAfterOurCloseNotifyIsInfo(@TempDir Path dir) throws Exception {
        TestCertificates.PemFiles pem = TestCertificates.writePemFiles(dir.resolve("pki"));
        Path prefix = dir.resolve("nginx");
        String body = "hello from nginx\n";
        BlockingQueue<Logged> log = new LinkedBlockingQueue<>();
        try (PeerProcess nginx = Nginx.start(prefix, "", port -> "http {\n"
                + "  access_log off;\n"
                + Nginx.httpTempPaths(prefix)
                + "  server {\n"
                + "    listen 127.0.0.1:" + port + " ssl;\n"
                + "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                + "    ssl_certificate " + pem.certificate() + ";\n"
                + "    ssl_certificate_key " + pem.privateKey() + ";\n"
                + "    location / { return 200 \"hello from nginx\\n\"; }\n"
                + "  }\n"
                + "}\n", Duration.ofSeconds(AWAIT_SECONDS))) {
            SslContext upstreamClientContext = trustingUpstream();
            Channel proxy = startProxy(new InetSocketAddress(InetAddress.getLoopbackAddress(), nginx.port()),
                    upstreamClientContext, log);
            try {
                try (SSLSocket client = connect(proxy)) {
                    client.getOutputStream().write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
                            .getBytes(StandardCharsets.US_ASCII));
                    client.getOutputStream().flush();
                    // Keep-alive: nginx leaves the connection open; the body is the end of the response.
                    StringBuilder response = new StringBuilder();
                    byte[] buffer = new byte[1024];
                    while (!response.toString().endsWith(body)) {
                        int n = client.getInputStream().read(buffer);
                        assertThat(n).as("response so far: %s", response).isPositive();
                        response.append(new String(buffer, 0, n, StandardCharsets.US_ASCII));
                    }
                    assertThat(response.toString()).startsWith("HTTP/1.1 200 OK");
                } // close(): close_notify, then FIN
                Logged logged = log.poll(AWAIT_SECONDS, TimeUnit.SECONDS);
                assertThat(logged).as("the proxy's log line; nginx:%n%s", nginx.output()).isNotNull();

                assertThat(logged.level).as(logged.message).isEqualTo(System.Logger.Level.INFO);
                assertThat(logged.message).contains("backend closed TCP without answering our close_notify (after "
                        + "our close; at a record boundary)", "backend TRUNCATED TlsCloseEvent(TRUNCATED, LOCAL, ");
            } finally {
                proxy.close().sync();
                ReferenceCountUtil.release(upstreamClientContext);
            }
        }
    }

    /**
     * The upstream cuts its stream first, without close_notify, and the client waits for the end: a truncation the
     * peer began stays a WARNING.
     */
    @Test
    void upstreamThatClosesTcpFirstIsWarning() throws Exception {
        Logged logged = relayOnce(trustingUpstream(), false, ch -> closeBelowTls(ch));

        assertThat(logged.level).as(logged.message).isEqualTo(System.Logger.Level.WARNING);
        assertThat(logged.message).contains("backend TRUNCATED").doesNotContain("after our close");
    }

    /**
     * An upstream whose certificate is not trusted, and a client that waits for the server to speak first: it is
     * reset at once, and the WARNING names the handshake's failure.
     */
    @Test
    void failedUpstreamHandshakeIsWarningWithItsCause() throws Exception {
        // The JDK's own CAs, as the proxy without --upstream-ca: the test CA is not among them.
        SslContext untrusting = ProxySslContexts.upstream(SslProvider.JDK, null, false);
        Logged logged = relayOnce(untrusting, false, ch -> { });

        assertThat(logged.level).as(logged.message).isEqualTo(System.Logger.Level.WARNING);
        // JDK 25 puts the alert's name before the reason: "(certificate_unknown) PKIX path building failed".
        assertThat(logged.message).contains("backend FAILED (javax.net.ssl.SSLHandshakeException: ")
                .contains("PKIX path building failed");
    }

    private static SslContext trustingUpstream() throws Exception {
        return SslContextBuilder.forClient().sslProvider(SslProvider.JDK)
                .trustManager(TestCertificates.caCertificate()).build();
    }

    private record Logged(System.Logger.Level level, String message) {
    }

    /**
     * Runs one client through the proxy to a scripted upstream that sends {@link #RESPONSE} after its handshake
     * and then does {@code afterResponse}; the client, which sends nothing, reads the response, or
     * ({@code !closeAfterResponse}) until the stream ends, then closes (close_notify, then FIN). Returns what the
     * proxy logged for it.
     */
    private static Logged relayOnce(SslContext upstreamClientContext, boolean closeAfterResponse,
                                    Consumer<Channel> afterResponse)
            throws Exception {
        Channel upstream = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast(upstreamServerContext.newHandler(ch.alloc()));
                        ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                            @Override
                            public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                                if (evt instanceof SslHandshakeCompletionEvent
                                        && ((SslHandshakeCompletionEvent) evt).isSuccess()) {
                                    ctx.writeAndFlush(Unpooled.wrappedBuffer(RESPONSE))
                                            .addListener(w -> afterResponse.accept(ctx.channel()));
                                }
                                ctx.fireUserEventTriggered(evt);
                            }

                            @Override
                            public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                ReferenceCountUtil.release(msg);
                            }

                            @Override
                            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                ctx.close();
                            }
                        });
                    }
                }).bind(InetAddress.getLoopbackAddress(), 0).sync().channel();
        BlockingQueue<Logged> log = new LinkedBlockingQueue<>();
        Channel proxy = startProxy((InetSocketAddress) upstream.localAddress(), upstreamClientContext, log);
        try {
            try (SSLSocket client = connect(proxy)) {
                client.startHandshake();
                read(client.getInputStream(), closeAfterResponse ? RESPONSE.length : Integer.MAX_VALUE);
            } catch (SocketException e) {
                // reset by the proxy, during the handshake or at close: it passed a failure on
            } // close(): close_notify, then FIN
            Logged logged = log.poll(AWAIT_SECONDS, TimeUnit.SECONDS);
            assertThat(logged).as("the proxy's log line").isNotNull();
            return logged;
        } finally {
            proxy.close().sync();
            upstream.close().sync();
            ReferenceCountUtil.release(upstreamClientContext);
        }
    }

    /**
     * Starts the proxy's pieces as {@code TlsTerminatingProxy} assembles them, to {@code upstream} in TLS, logging
     * through an {@link OutcomeLog} into {@code log}.
     */
    private static Channel startProxy(InetSocketAddress upstream, SslContext upstreamClientContext,
                                      BlockingQueue<Logged> log) throws InterruptedException {
        Bootstrap backend = new Bootstrap().channel(NioSocketChannel.class)
                .handler(new TlsTerminatingProxyBackendInitializer(upstreamClientContext, upstream,
                        GracefulTlsCloseHandler::new));
        return new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childOption(ChannelOption.AUTO_READ, false)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new TlsTerminatingProxyInitializer(proxyServerContext, GracefulTlsCloseHandler::new,
                        backend, upstream, new OutcomeLog(new CapturingLogger(log))))
                .bind(InetAddress.getLoopbackAddress(), 0).sync().channel();
    }

    /** A TLSv1.3 client of the proxy, trusting its certificate, with a read timeout of {@link #AWAIT_SECONDS}. */
    private static SSLSocket connect(Channel proxy) throws Exception {
        SSLContext insecure = SSLContext.getInstance("TLSv1.3");
        insecure.init(null, InsecureTrustManagerFactory.INSTANCE.getTrustManagers(), null);
        SSLSocket client = (SSLSocket) insecure.getSocketFactory().createSocket(
                InetAddress.getLoopbackAddress(), ((InetSocketAddress) proxy.localAddress()).getPort());
        client.setSoTimeout((int) TimeUnit.SECONDS.toMillis(AWAIT_SECONDS));
        return client;
    }

    /** Reads {@code length} bytes, or until the stream ends or fails (a reset from the proxy). */
    private static void read(InputStream in, int length) {
        byte[] buffer = new byte[1024];
        int read = 0;
        try {
            while (read < length) {
                int n = in.read(buffer, 0, Math.min(buffer.length, length - read));
                if (n < 0) {
                    return;
                }
                read += n;
            }
        } catch (SocketTimeoutException e) {
            throw new AssertionError("the proxy left the client waiting for " + AWAIT_SECONDS + " s", e);
        } catch (IOException e) {
            // a reset: the proxy passed a failure on
        }
    }

    private static void closeBelowTls(Channel ch) {
        ch.pipeline().context(SslHandler.class).close();
    }

    /** A {@link System.Logger} that keeps each line. */
    private static final class CapturingLogger implements System.Logger {
        private final BlockingQueue<Logged> lines;

        CapturingLogger(BlockingQueue<Logged> lines) {
            this.lines = lines;
        }

        @Override
        public String getName() {
            return "capture";
        }

        @Override
        public boolean isLoggable(Level level) {
            return true;
        }

        @Override
        public void log(Level level, ResourceBundle bundle, String msg, Throwable thrown) {
            lines.add(new Logged(level, msg));
        }

        @Override
        public void log(Level level, ResourceBundle bundle, String format, Object... params) {
            lines.add(new Logged(level, params == null || params.length == 0 ? format
                    : MessageFormat.format(format, params)));
        }
    }
}
