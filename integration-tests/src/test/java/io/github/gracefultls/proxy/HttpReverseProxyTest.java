package io.github.gracefultls.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.examples.http.HttpReverseProxy;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Promise;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The example's {@link HttpReverseProxy} (HTTP codecs on both sides, TLS on both sides) between real clients and an
 * upstream that ends its response cleanly or cuts it: a cut upstream response never reaches the client as a complete
 * one, whatever its framing; a clean one arrives whole. Clients: Netty (with {@link HttpTlsTruncationHandler}) and
 * curl.
 */
class HttpReverseProxyTest {

    private static final Duration AWAIT = Duration.ofSeconds(30);
    private static final int BODY = 102_400;
    private static final int SENT = 51_200;
    private static final byte[] PAYLOAD = payload();

    private static EventLoopGroup group;
    private static PemPaths pem;

    /** How the upstream frames its body, and whether it ends cleanly or cuts it after {@link #SENT} bytes. */
    enum Upstream {
        CLOSE_DELIMITED_CLEAN("", false), CLOSE_DELIMITED_CUT("", true),
        CONTENT_LENGTH_CLEAN("Content-Length: " + BODY + "\r\n", false),
        CONTENT_LENGTH_CUT("Content-Length: " + BODY + "\r\n", true),
        CHUNKED_CLEAN("Transfer-Encoding: chunked\r\n", false), CHUNKED_CUT("Transfer-Encoding: chunked\r\n", true);

        final String framing;
        final boolean cut;

        Upstream(String framing, boolean cut) {
            this.framing = framing;
            this.cut = cut;
        }

        byte[] response() {
            int n = cut ? SENT : BODY;
            StringBuilder b = new StringBuilder("HTTP/1.1 200 OK\r\n").append(framing).append("\r\n");
            String body = new String(PAYLOAD, 0, n, StandardCharsets.ISO_8859_1);
            if (framing.startsWith("Transfer-Encoding")) {
                b.append(Integer.toHexString(n)).append("\r\n").append(body).append("\r\n");
                if (!cut) {
                    b.append("0\r\n\r\n");
                }
            } else {
                b.append(body);
            }
            return b.toString().getBytes(StandardCharsets.ISO_8859_1);
        }

        ScriptedUpstream start() throws Exception {
            return new ScriptedUpstream(true, conn -> {
                conn.readUntil("\r\n\r\n");
                conn.write(response());
                if (cut) {
                    conn.dropTcp(); // a FIN without close_notify
                    return "cut";
                }
                return conn.endCleanly();
            });
        }
    }

    private record PemPaths(Path ca) {
    }

    @BeforeAll
    static void start(@TempDir Path dir) throws Exception {
        group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        pem = new PemPaths(TestCertificates.writePemFiles(dir).caCertificate());
    }

    @AfterAll
    static void stop() {
        group.shutdownGracefully(0, 0, TimeUnit.SECONDS).syncUninterruptibly();
    }

    @ParameterizedTest
    @EnumSource(Upstream.class)
    void nettyClientNeverSeesACutUpstreamResponseAsComplete(Upstream upstream) throws Exception {
        try (ScriptedUpstream server = upstream.start()) {
            Channel proxy = startProxy(server.port());
            try {
                Promise<FullHttpResponse> response = group.next().newPromise();
                Promise<TlsCloseEvent> event = group.next().newPromise();
                Channel client = connectClient(proxy, response, event);
                client.writeAndFlush(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/"));

                FullHttpResponse r = response.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
                try {
                    if (upstream.cut) {
                        assertThat(r.decoderResult().isFailure()).as("decoder result of %s", r).isTrue();
                        assertThat(r.decoderResult().cause()).isInstanceOf(TlsTruncationException.class)
                                .hasMessageContaining("inside an HTTP response body");
                        assertThat(r.content().readableBytes()).isLessThanOrEqualTo(SENT);
                        assertThat(event.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS).isMessageCut()).isTrue();
                    } else {
                        assertThat(r.decoderResult().isSuccess()).as("decoder result of %s", r).isTrue();
                        assertThat(ByteBufUtil.getBytes(r.content())).isEqualTo(PAYLOAD);
                        if (upstream == Upstream.CLOSE_DELIMITED_CLEAN) {
                            // Chunked for the client, whose connection then ends cleanly.
                            assertThat(r.headers().get(HttpHeaderNames.CONNECTION)).isEqualTo("close");
                            assertThat(event.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS).isClean()).isTrue();
                        }
                    }
                } finally {
                    r.release();
                    client.close().await(AWAIT.toMillis());
                }
            } finally {
                proxy.close().syncUninterruptibly();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Upstream.class)
    void curlNeverSeesACutUpstreamResponseAsComplete(Upstream upstream, @TempDir Path dir) throws Exception {
        String curl = Peers.require(Peers.Program.CURL).toString();
        try (ScriptedUpstream server = upstream.start()) {
            Channel proxy = startProxy(server.port());
            Path output = dir.resolve("body");
            int port = ((InetSocketAddress) proxy.localAddress()).getPort();
            try (PeerProcess p = PeerProcess.start("curl", List.of(curl, "--silent", "--show-error", "--http1.1",
                    "--cacert", pem.ca().toString(), "--resolve", TestCertificates.HOSTNAME + ":" + port
                            + ":127.0.0.1", "--max-time", "20", "--output", output.toString(),
                    "https://" + TestCertificates.HOSTNAME + ":" + port + "/"), dir)) {
                int exit = p.awaitExit(AWAIT);
                if (upstream.cut) {
                    // 56: the reset (or 18: a transfer closed with data outstanding), never 0.
                    assertThat(exit).as("curl's exit code; %s", p.output()).isIn(18, 56);
                    assertThat(Files.size(output)).isLessThanOrEqualTo(SENT);
                } else {
                    assertThat(exit).as("curl's exit code; %s", p.output()).isZero();
                    assertThat(Files.readAllBytes(output)).isEqualTo(PAYLOAD);
                }
            } finally {
                proxy.close().syncUninterruptibly();
            }
        }
    }

    private static Channel startProxy(int upstreamPort) throws InterruptedException {
        SslContext upstreamTls = Tls.clientContext(SslProvider.JDK, Tls.TLS_1_3);
        HttpReverseProxy proxy = new HttpReverseProxy(Tls.serverContext(SslProvider.JDK, Tls.TLS_1_3),
                new InetSocketAddress("127.0.0.1", upstreamPort), upstreamTls);
        return new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childHandler(proxy.frontendInitializer())
                .bind("127.0.0.1", 0).sync().channel();
    }

    private static Channel connectClient(Channel proxy, Promise<FullHttpResponse> response,
                                         Promise<TlsCloseEvent> event) throws Exception {
        SslContext tls = Tls.clientContext(SslProvider.JDK, Tls.TLS_1_3);
        InetSocketAddress address = (InetSocketAddress) proxy.localAddress();
        return new Bootstrap().group(group).channel(NioSocketChannel.class)
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast(tls.newHandler(ch.alloc(), TestCertificates.HOSTNAME,
                                        address.getPort()),
                                new GracefulTlsCloseHandler(), new HttpClientCodec(), new HttpTlsTruncationHandler(),
                                new HttpObjectAggregator(1 << 20), new ChannelInboundHandlerAdapter() {
                                    @Override
                                    public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                        if (!response.trySuccess((FullHttpResponse) msg)) {
                                            ReferenceCountUtil.release(msg);
                                        }
                                    }

                                    @Override
                                    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                                        if (evt instanceof TlsCloseEvent) {
                                            event.trySuccess((TlsCloseEvent) evt);
                                        }
                                    }

                                    @Override
                                    public void channelInactive(ChannelHandlerContext ctx) {
                                        response.tryFailure(new AssertionError("closed without a response"));
                                    }
                                });
                    }
                })
                .connect(address).sync().channel();
    }

    private static byte[] payload() {
        byte[] b = new byte[BODY];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) ('a' + i % 26);
        }
        return b;
    }
}
