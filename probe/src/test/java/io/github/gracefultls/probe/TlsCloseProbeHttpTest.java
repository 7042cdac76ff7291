package io.github.gracefultls.probe;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.testing.TestCertificates;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
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

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code --http} against a scripted in-process HTTP/1.1 server that sends a response and then ends the connection
 * with {@code close_notify} or with a bare FIN: the probe says whether the body came whole or was cut, with the
 * message state and the {@code TlsTruncationException}'s message, in its lines and in its JSON.
 */
@Timeout(60)
class TlsCloseProbeHttpTest {

    private static final String ANSWERED_TIMEOUT = "30s";
    private static final int BODY = 20_000;
    private static final int HALF = 10_000;

    private static EventLoopGroup group;
    private static SslContext serverContext;
    private static Path caFile;

    @BeforeAll
    static void setUp(@TempDir Path dir) throws Exception {
        group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        serverContext = SslContextBuilder.forServer(TestCertificates.serverKey(),
                TestCertificates.serverCertificateChain()).sslProvider(SslProvider.JDK)
                .protocols("TLSv1.3", "TLSv1.2").build();
        caFile = TestCertificates.writePemFiles(dir).caCertificate();
    }

    @AfterAll
    static void tearDown() {
        ReferenceCountUtil.release(serverContext);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    @Test
    void aCloseDelimitedBodyEndedByCloseNotifyIsComplete() throws Exception {
        try (HttpServer server = new HttpServer(closeDelimited(BODY), true)) {
            ProbeRun run = probe(server, "jdk", "1.3");

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains(
                    "body         complete, " + BODY + " bytes of content (delimited by the end of the connection)",
                    "the server, after the response -> CLOSE_NOTIFY_RECEIVED, initiator PEER, ",
                    ", in message (its end)",
                    "verdict: clean: the server sent close_notify before closing TCP");
            assertThat(run.err()).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0} TLS {1}")
    @MethodSource("io.github.gracefultls.probe.ProbeRun#providersAndProtocols")
    void aCloseDelimitedBodyEndedByABareFinIsCut(String provider, String protocol) throws Exception {
        try (HttpServer server = new HttpServer(closeDelimited(BODY), false)) {
            ProbeRun run = probe(server, provider, protocol);

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out()).contains(
                    "body         cut: the TLS stream ended without the peer's close_notify (TRUNCATED) inside an "
                            + "HTTP response body, after " + BODY + " bytes of content (delimited by the end of the "
                            + "connection)",
                    "the server, after the response -> TRUNCATED, initiator PEER, ",
                    ", in message: cut",
                    "verdict: not clean: the server closed TCP without close_notify, so a client cannot tell its "
                            + "response from a truncated one");
            assertThat(run.err()).isEmpty();
        }
    }

    @Test
    void aContentLengthBodyCutHalfwaySaysWhere() throws Exception {
        try (HttpServer server = new HttpServer(withContentLength(BODY, HALF), false)) {
            ProbeRun run = probe(server, "openssl", "1.2");

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out()).contains("body         cut: the TLS stream ended without the peer's close_notify "
                    + "(TRUNCATED) inside an HTTP response body, after " + HALF + " bytes of content of " + BODY
                    + " (Content-Length)", ", in message: cut");
        }
    }

    @Test
    void aCompleteContentLengthBodyThenABareFinIsBetweenMessages() throws Exception {
        try (HttpServer server = new HttpServer(withContentLength(BODY, BODY), false)) {
            ProbeRun run = probe(server, "jdk", "1.2");

            assertThat(run.exitCode()).as("no close_notify is still not clean: %s", run)
                    .isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out()).contains("body         complete, " + BODY + " bytes of content (Content-Length: "
                            + BODY + ")",
                    "-> TRUNCATED, initiator PEER, ", ", between messages",
                    "verdict: not clean: the server closed TCP without close_notify, after its complete response "
                            + "(between messages: nothing was cut)");
        }
    }

    @Test
    void jsonSaysTheBodyWasCutAndWhere() throws Exception {
        try (HttpServer server = new HttpServer(closeDelimited(BODY), false)) {
            ProbeRun run = probe(server, "jdk", "1.3", "--json");

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_NOT_CLEAN);
            assertThat(run.out().strip()).startsWith("{").endsWith("}").doesNotContain("\n");
            assertThat(run.out()).contains("\"status\":\"HTTP/1.1 200 OK\"", "\"body\":\"CUT\"",
                    "\"framing\":\"delimited by the end of the connection\"", "\"contentBytes\":" + BODY,
                    "\"truncation\":\"the TLS stream ended without the peer's close_notify (TRUNCATED) inside an "
                            + "HTTP response body, after " + BODY + " bytes of content (delimited by the end of the "
                            + "connection)\"",
                    "\"decoderFailure\":null",
                    "\"status\":\"TRUNCATED\"", "\"messageState\":\"IN_MESSAGE\"", "\"messageCut\":true");
        }
    }

    @Test
    void jsonSaysACleanEndCutNothing() throws Exception {
        try (HttpServer server = new HttpServer(closeDelimited(BODY), true)) {
            ProbeRun run = probe(server, "openssl", "1.3", "--json");

            assertThat(run.exitCode()).as(run.toString()).isEqualTo(TlsCloseProbe.EXIT_CLEAN);
            assertThat(run.out()).contains("\"body\":\"COMPLETE\"", "\"truncation\":null",
                    "\"status\":\"CLOSE_NOTIFY_RECEIVED\"", "\"messageState\":\"IN_MESSAGE\"",
                    "\"messageCut\":false");
        }
    }

    // ---- helpers

    private static ProbeRun probe(HttpServer server, String provider, String protocol, String... more) {
        String[] args = new String[more.length + 4];
        args[0] = "--http";
        args[1] = "/";
        args[2] = "--timeout";
        args[3] = ANSWERED_TIMEOUT;
        System.arraycopy(more, 0, args, 4, more.length);
        return ProbeRun.against(caFile, server.port(), provider, protocol, args);
    }

    private static byte[] closeDelimited(int bodyBytes) {
        return response("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", bodyBytes);
    }

    private static byte[] withContentLength(int length, int sent) {
        return response("HTTP/1.1 200 OK\r\nContent-Length: " + length + "\r\nConnection: close\r\n\r\n", sent);
    }

    private static byte[] response(String head, int bodyBytes) {
        byte[] h = head.getBytes(StandardCharsets.US_ASCII);
        byte[] r = new byte[h.length + bodyBytes];
        System.arraycopy(h, 0, r, 0, h.length);
        for (int i = 0; i < bodyBytes; i++) {
            r[h.length + i] = (byte) ('a' + i % 26);
        }
        return r;
    }

    /**
     * A TLS server on loopback that answers the first request head with {@code response} and then ends the
     * connection: with {@code close_notify} ({@code close()} through {@link GracefulTlsCloseHandler}), or, not
     * {@code clean}, by closing TCP beneath its {@code SslHandler} (a bare FIN).
     */
    private static final class HttpServer implements AutoCloseable {
        private final Channel channel;

        HttpServer(byte[] response, boolean clean) throws InterruptedException {
            channel = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.config().setAllowHalfClosure(true);
                            ch.pipeline().addLast("ssl", serverContext.newHandler(ch.alloc()));
                            ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                            ch.pipeline().addLast("app", new Respond(response, clean));
                        }
                    })
                    .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
        }

        int port() {
            return ((InetSocketAddress) channel.localAddress()).getPort();
        }

        @Override
        public void close() {
            channel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
    }

    /** Answers once the request head is in, then ends the connection as told. */
    private static final class Respond extends ChannelInboundHandlerAdapter {
        private final byte[] response;
        private final boolean clean;
        private final StringBuilder head = new StringBuilder();
        private boolean answered;

        Respond(byte[] response, boolean clean) {
            this.response = response;
            this.clean = clean;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            try {
                head.append(((ByteBuf) msg).toString(StandardCharsets.ISO_8859_1));
            } finally {
                ReferenceCountUtil.release(msg);
            }
            if (answered || head.indexOf("\r\n\r\n") < 0) {
                return;
            }
            answered = true;
            ctx.writeAndFlush(Unpooled.wrappedBuffer(response)).addListener(f -> {
                if (clean) {
                    ctx.channel().close();
                } else {
                    ctx.pipeline().firstContext().close(); // beneath the SslHandler: no close_notify
                }
            });
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }
}
