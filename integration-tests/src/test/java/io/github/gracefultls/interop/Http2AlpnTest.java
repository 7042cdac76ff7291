package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.http.Http2StreamMarks;
import io.github.gracefultls.testing.LogCapture;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.Tls;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpScheme;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.DefaultHttp2Connection;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.HttpConversionUtil;
import io.netty.handler.codec.http2.HttpToHttp2ConnectionHandler;
import io.netty.handler.codec.http2.HttpToHttp2ConnectionHandlerBuilder;
import io.netty.handler.codec.http2.InboundHttp2ToHttpAdapterBuilder;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.util.ReferenceCountUtil;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import java.util.logging.Level;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * HTTP/2 over ALPN behind the handler, in Netty's two styles ({@code Http2FrameCodec} + {@code Http2MultiplexHandler},
 * and {@code HttpToHttp2ConnectionHandler}), with HTTP/1.1 as the ALPN fallback. The server answers a request with its
 * headers, then closes the connection while the body is still being written, one chunk per write completion: the
 * codec sends GOAWAY, drains the open stream within its grace period, then passes the close on to the handler, which
 * sends our close_notify, then FIN. curl ({@code --http2}) and a Netty h2 client get every byte.
 *
 * <p>Findings: curl 7.88.1 over h2 never sends close_notify, it just closes the socket once its stream is done: our
 * server's event is {@code TRUNCATED}, after the whole body (initiator LOCAL or PEER, by who was first). HTTP/2's own
 * framing (END_STREAM, GOAWAY) said the response was complete. The Netty client answers our close_notify: both sides
 * {@code CLOSE_NOTIFY_RECEIVED}. With the grace period 0 ({@code Http2FrameCodecBuilder}'s default) the stream is
 * cut: curl exits non-zero, and the handler warns once per JVM.
 *
 * <p>Both sides mark their streams ({@code Http2StreamMarks}): curl's bare FIN after its last stream, whether we or
 * curl began, is {@code TRUNCATED} between messages, not a cut message. When our server cuts a stream (it drops TCP
 * halfway through the body, without close_notify), curl exits with an error and a Netty h2 client's event is
 * {@code TRUNCATED} in a message ({@code isMessageCut()}); the server's own event is {@code TRUNCATED} between
 * messages, as it had the whole request.
 */
class Http2AlpnTest extends InteropTest {

    private static final int CHUNK = 64 * 1024;
    private static final int CHUNKS = 16;
    private static final byte[] BODY = body();
    /** The codecs' grace period: far beyond any stall; the drain, not the clock, ends it. */
    private static final long GRACE_MILLIS = 60_000;
    private static final Duration EXIT = Duration.ofSeconds(30);

    /** Netty's two ways to run HTTP/2. */
    enum Style {
        FRAME_CODEC, HTTP_TO_HTTP2
    }

    /** How our server answers a request (frame style only, but for the first). */
    enum Answer {
        /** Headers, then close() on the connection, then the body: the codec drains the stream, then closes. */
        CLOSE_DURING_STREAM,
        /** The whole body; the connection stays open for the client to end. */
        COMPLETE,
        /** Half the body, then TCP closed beneath the SslHandler: no close_notify, no END_STREAM. */
        CUT
    }

    private static byte[] body() {
        byte[] body = new byte[CHUNK * CHUNKS];
        new Random(20261205).nextBytes(body);
        return body;
    }

    static Stream<Arguments> stylesAndCells() {
        return Stream.of(Style.values()).flatMap(s -> Cell.nio().map(c -> Arguments.of(s, c)));
    }

    static Stream<Arguments> stylesOnEpoll() {
        return Stream.of(Style.values()).flatMap(s -> Cell.all()
                .filter(c -> c.transport() == io.github.gracefultls.testing.Transport.EPOLL)
                .filter(c -> c.provider() == Tls.Provider.OPENSSL && c.isTls13()).map(c -> Arguments.of(s, c)));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our server
    // ------------------------------------------------------------------------------------------------------------

    /** Our server; every accepted connection's handler goes into {@link #handlers}. */
    private final class H2Server implements AutoCloseable {
        final BlockingQueue<GracefulTlsCloseHandler> handlers = new LinkedBlockingQueue<>();
        final BlockingQueue<String> protocols = new LinkedBlockingQueue<>();
        final Channel channel;

        H2Server(Cell cell, Style style, long graceMillis) throws Exception {
            this(cell, style, graceMillis, Answer.CLOSE_DURING_STREAM);
        }

        H2Server(Cell cell, Style style, long graceMillis, Answer answer) throws Exception {
            SslContext context = Tls.serverContextBuilder(cell.provider().sslProvider(), cell.protocol())
                    .applicationProtocolConfig(alpn()).build();
            ServerBootstrap b = new ServerBootstrap().group(loops.group(cell.transport()))
                    .channel(cell.transport().serverChannelClass())
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childHandler(new ChannelInitializer<>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder()
                                    .closeNotifyReadTimeout(LONG_TIMEOUT).build();
                            handlers.add(handler);
                            ch.pipeline().addLast("ssl", context.newHandler(ch.alloc()));
                            ch.pipeline().addLast("tls-close", handler);
                            ch.pipeline().addLast("alpn", new ApplicationProtocolNegotiationHandler(
                                    ApplicationProtocolNames.HTTP_1_1) {
                                @Override
                                protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
                                    protocols.add(protocol);
                                    if (ApplicationProtocolNames.HTTP_2.equals(protocol)) {
                                        configureH2Server(ctx.pipeline(), style, graceMillis, answer);
                                    } else {
                                        ctx.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(1024),
                                                new H1ThenClose());
                                    }
                                }
                            });
                        }
                    });
            channel = b.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
        }

        int port() {
            return ((InetSocketAddress) channel.localAddress()).getPort();
        }

        GracefulTlsCloseHandler awaitHandler() throws InterruptedException {
            GracefulTlsCloseHandler h = handlers.poll(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
            assertThat(h).as("a connection accepted").isNotNull();
            return h;
        }

        @Override
        public void close() throws Exception {
            channel.close().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    private static ApplicationProtocolConfig alpn() {
        return new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
                ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT,
                ApplicationProtocolNames.HTTP_2, ApplicationProtocolNames.HTTP_1_1);
    }

    /**
     * The server's h2 codec, its streams marked: {@code graceMillis} is its grace period for open streams on close.
     */
    static void configureH2Server(ChannelPipeline p, Style style, long graceMillis, Answer answer) {
        GracefulTlsCloseHandler tlsClose = p.get(GracefulTlsCloseHandler.class);
        if (style == Style.FRAME_CODEC) {
            Http2FrameCodec codec = Http2FrameCodecBuilder.forServer().gracefulShutdownTimeoutMillis(graceMillis)
                    .build();
            p.addLast("h2", codec);
            Http2StreamMarks.attach(codec, tlsClose);
            p.addLast(new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                @Override
                protected void initChannel(Http2StreamChannel ch) {
                    ch.pipeline().addLast(new FrameAnswer(answer));
                }
            }));
        } else {
            assertThat(answer).as("HttpToHttp2 style answers one way").isEqualTo(Answer.CLOSE_DURING_STREAM);
            Http2Connection connection = new DefaultHttp2Connection(true);
            HttpToHttp2ConnectionHandler codec = new HttpToHttp2ConnectionHandlerBuilder().connection(connection)
                    .gracefulShutdownTimeoutMillis(graceMillis)
                    .frameListener(new InboundHttp2ToHttpAdapterBuilder(connection).maxContentLength(1024)
                            .propagateSettings(false).build())
                    .build();
            p.addLast("h2", codec);
            Http2StreamMarks.attach(codec, tlsClose);
            p.addLast(new HttpStreamThenClose());
        }
    }

    /**
     * Writes chunks {@code n} to the end, each in a new event loop task once the previous one is written, as a body
     * produced over time would be: the body is still being sent when the connection is closed. (A loopback socket
     * takes 1 MiB at once: written in one task, the whole body would be in the pipeline before the close.)
     */
    private static void writeChunks(int n, Channel ch, IntFunction<ChannelFuture> writeChunk) {
        writeChunks(n, CHUNKS, ch, writeChunk, () -> { });
    }

    /** Chunks {@code n} to {@code end} (exclusive) as above, then {@code after} once the last one is written. */
    private static void writeChunks(int n, int end, Channel ch, IntFunction<ChannelFuture> writeChunk,
                                    Runnable after) {
        if (n < end) {
            writeChunk.apply(n).addListener(f -> {
                if (f.isSuccess()) {
                    ch.eventLoop().execute(() -> writeChunks(n + 1, end, ch, writeChunk, after));
                }
            });
        } else {
            after.run();
        }
    }

    private static ByteBuf chunk(int i) {
        return Unpooled.wrappedBuffer(BODY, i * CHUNK, CHUNK);
    }

    /**
     * Frame style: on a request, headers, then by {@link Answer}: the parent's close() and the body chunk by chunk;
     * the body; or half the body and the parent's TCP connection closed beneath its SslHandler.
     */
    private static final class FrameAnswer extends ChannelInboundHandlerAdapter {
        private final Answer answer;

        FrameAnswer(Answer answer) {
            this.answer = answer;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            boolean request = msg instanceof Http2HeadersFrame && ((Http2HeadersFrame) msg).isEndStream();
            ReferenceCountUtil.release(msg);
            if (!request) {
                return;
            }
            ctx.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200")
                    .setInt("content-length", BODY.length)));
            Channel parent = ((Http2StreamChannel) ctx.channel()).parent();
            IntFunction<ChannelFuture> writeChunk =
                    i -> ctx.writeAndFlush(new DefaultHttp2DataFrame(chunk(i), i == CHUNKS - 1));
            switch (answer) {
                case CLOSE_DURING_STREAM:
                    parent.close();
                    writeChunks(0, ctx.channel(), writeChunk);
                    break;
                case COMPLETE:
                    writeChunks(0, ctx.channel(), writeChunk);
                    break;
                default:
                    writeChunks(0, CHUNKS / 2, ctx.channel(), writeChunk,
                            () -> parent.pipeline().firstContext().close()); // beneath the SslHandler: a bare FIN
            }
        }
    }

    /** HttpToHttp2 style: the same with HTTP/1 objects, the stream named by the extension header. */
    private static final class HttpStreamThenClose extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof FullHttpRequest)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            String streamId = ((FullHttpRequest) msg).headers()
                    .get(HttpConversionUtil.ExtensionHeaderNames.STREAM_ID.text());
            ReferenceCountUtil.release(msg);
            HttpResponse response = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
            response.headers().set(HttpConversionUtil.ExtensionHeaderNames.STREAM_ID.text(), streamId)
                    .setInt("content-length", BODY.length);
            ctx.writeAndFlush(response);
            ctx.channel().close();
            writeChunks(0, ctx.channel(), i -> ctx.writeAndFlush(i == CHUNKS - 1 ? new DefaultLastHttpContent(chunk(i))
                    : new DefaultHttpContent(chunk(i))));
        }
    }

    /** HTTP/1.1, the ALPN fallback: the response, then close(). */
    private static final class H1ThenClose extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ReferenceCountUtil.release(msg);
            if (msg instanceof FullHttpRequest) {
                HttpResponse response = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
                response.headers().setInt("content-length", BODY.length);
                ctx.write(response);
                ctx.writeAndFlush(new DefaultLastHttpContent(Unpooled.wrappedBuffer(BODY)))
                        .addListener(f -> ctx.channel().close());
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // curl
    // ------------------------------------------------------------------------------------------------------------

    private PeerProcess curl(Cell cell, int port, String http, Path output) {
        String bin = Peers.require(Peers.Program.CURL).toString();
        String version = cell.isTls13() ? "1.3" : "1.2";
        return perTest(PeerProcess.start("curl", List.of(bin, "--silent", "--show-error", http,
                "--tlsv" + version, "--tls-max", version, "--cacert", pem.caCertificate().toString(),
                "--resolve", TestHost.NAME + ":" + port + ":127.0.0.1", "--max-time", "25",
                "--output", output.toString(), "--write-out", "%{http_version} %{http_code} %{size_download}",
                "https://" + TestHost.NAME + ":" + port + "/"), workDirectory));
    }

    /** What curl did against our server: its exit status and output, what it saved, and our server's outcome. */
    private record CurlRun(int exit, String stdout, String stderr, byte[] saved, TlsCloseEvent event) {
        /** For the report: curl's word and our server's outcome. */
        String describe() {
            return "curl exit " + exit + (exit == 0 ? ", " + stdout : " (" + stderr.trim() + ")") + ", saved "
                    + saved.length + " of " + BODY.length + "; server " + InteropTest.describe(event);
        }
    }

    /** Runs curl ({@code --http2} or {@code --http1.1}) against {@code server} to its end, and our side's too. */
    private CurlRun curlRun(H2Server server, Cell cell, String http) throws Exception {
        Path output = workDirectory.resolve("curl-" + System.nanoTime() + ".bin");
        PeerProcess curl = curl(cell, server.port(), http, output);
        GracefulTlsCloseHandler ours = server.awaitHandler();
        int exit = curl.awaitExit(EXIT);
        TlsCloseEvent event = await(ours);
        byte[] saved = Files.exists(output) ? Files.readAllBytes(output) : new byte[0];
        CurlRun run = new CurlRun(exit, curl.stdout(), curl.stderr(), saved, event);
        InteropReport.observe(run.describe());
        return run;
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    private static TlsCloseEvent await(GracefulTlsCloseHandler handler) throws Exception {
        return handler.closeFuture().get(LONG_TIMEOUT.plus(AWAIT).toMillis(), TimeUnit.MILLISECONDS);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource({"stylesAndCells", "stylesOnEpoll"})
    void curlGetsEveryByteWhenTheServerClosesDuringTheStream(Style style, Cell cell) throws Exception {
        H2Server server = perTest(new H2Server(cell, style, GRACE_MILLIS));
        CurlRun curl = curlRun(server, cell, "--http2");
        TlsCloseEvent event = curl.event();

        assertThat(server.protocols.poll()).isEqualTo(ApplicationProtocolNames.HTTP_2);
        assertThat(curl.exit()).as("curl exit status; stderr: %s", curl.stderr()).isZero();
        assertThat(curl.stdout()).isEqualTo("2 200 " + BODY.length);
        assertThat(sha256(curl.saved())).as("SHA-256 of the body curl saved").isEqualTo(sha256(BODY));
        // curl 7.88 over h2 closes its socket without close_notify, after the whole body: between messages.
        assertThat(event.status()).as("%s", event).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(event.messageState()).as("%s", event).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(event.isMessageCut()).isFalse();
    }

    /** curl ends the connection itself after its last stream, with a bare FIN: a truncation between messages. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void curlEndingAfterItsLastStreamIsBetweenMessages(Cell cell) throws Exception {
        H2Server server = perTest(new H2Server(cell, Style.FRAME_CODEC, GRACE_MILLIS, Answer.COMPLETE));
        CurlRun curl = curlRun(server, cell, "--http2");
        TlsCloseEvent event = curl.event();

        assertThat(curl.exit()).as("curl exit status; stderr: %s", curl.stderr()).isZero();
        assertThat(sha256(curl.saved())).isEqualTo(sha256(BODY));
        assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(event.messageState()).as("%s", event).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(event.isMessageCut()).isFalse();
        assertThat(event.toString()).contains(", between messages");
    }

    /**
     * Our server cuts the stream: half the body, then TCP closed beneath the SslHandler. curl 7.88.1 fails: exit 18,
     * "HTTP/2 stream 1 was not closed cleanly before end of the underlying stream", having saved the half; or exit
     * 56, "Recv failure: Connection reset by peer", when curl's window updates were still unread on our side and the
     * close became an RST (seen with OpenSSL TLSv1.3). Our server's own event is a truncation between messages (it
     * had the whole request), initiator PEER: the handler cannot tell a close beneath it from the peer's.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void curlFailsOnAStreamOurServerCuts(Cell cell) throws Exception {
        H2Server server = perTest(new H2Server(cell, Style.FRAME_CODEC, GRACE_MILLIS, Answer.CUT));
        CurlRun curl = curlRun(server, cell, "--http2");
        TlsCloseEvent event = curl.event();

        assertThat(curl.exit()).as("curl exit status; stderr: %s", curl.stderr()).isNotZero();
        assertThat(curl.saved().length).isLessThan(BODY.length);
        assertThat(event.status()).as("%s", event).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(event.messageState()).as("%s", event).isEqualTo(MessageState.BETWEEN_MESSAGES);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void curlOverHttp11ViaAlpnGetsEveryByte(Cell cell) throws Exception {
        H2Server server = perTest(new H2Server(cell, Style.FRAME_CODEC, GRACE_MILLIS));
        CurlRun curl = curlRun(server, cell, "--http1.1");
        TlsCloseEvent event = curl.event();

        assertThat(server.protocols.poll()).isEqualTo(ApplicationProtocolNames.HTTP_1_1);
        assertThat(curl.exit()).as("curl exit status; stderr: %s", curl.stderr()).isZero();
        assertThat(sha256(curl.saved())).isEqualTo(sha256(BODY));
        // Over HTTP/1.1 curl answers our close_notify.
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
    }

    /**
     * {@code Http2FrameCodecBuilder}'s default grace period, 0: the codec passes the close on right after its GOAWAY,
     * the stream is cut, curl fails. The handler warns once per JVM (then logs at debug level).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void withoutAGracePeriodTheStreamIsCutAndTheHandlerSaysSo(Cell cell) throws Exception {
        assertThat(Http2FrameCodecBuilder.forServer().build().gracefulShutdownTimeoutMillis())
                .as("Http2FrameCodecBuilder's default grace period").isZero();
        try (LogCapture log = LogCapture.of(GracefulTlsCloseHandler.class, Level.FINE)) {
            H2Server server = perTest(new H2Server(cell, Style.FRAME_CODEC, 0));
            CurlRun curl = curlRun(server, cell, "--http2");

            assertThat(curl.exit()).as("curl exit status").isNotZero();
            assertThat(curl.saved().length).isLessThan(BODY.length);
            List<String> said = new java.util.ArrayList<>(log.messages(Level.WARNING));
            said.addAll(log.messages(Level.FINE));
            assertThat(said).as("the handler's word on the codec").anyMatch(m -> m.contains(
                    "gracefulShutdownTimeoutMillis 0"));
            assertThat(log.messages(Level.WARNING)).as("warned once per JVM at most").hasSizeLessThanOrEqualTo(1);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // A Netty h2 client
    // ------------------------------------------------------------------------------------------------------------

    /** Our h2 client in {@code style}: one GET, the body collected; the client's handler and the body future. */
    private record Client(Channel channel, GracefulTlsCloseHandler handler, CompletableFuture<byte[]> body) {
    }

    private Client nettyClient(Cell cell, Style style, int port) throws Exception {
        SslContext context = Tls.clientContextBuilder(cell.provider().sslProvider(), cell.protocol())
                .applicationProtocolConfig(alpn()).build();
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT)
                .build();
        CompletableFuture<byte[]> body = new CompletableFuture<>();
        CompletableFuture<Void> ready = new CompletableFuture<>();
        ByteArrayOutputStream collected = new ByteArrayOutputStream();
        Bootstrap b = new Bootstrap().group(loops.group(cell.transport())).channel(cell.transport().channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast("ssl", context.newHandler(ch.alloc(), TestHost.NAME, port));
                        ch.pipeline().addLast("tls-close", handler);
                        ch.pipeline().addLast(new ApplicationProtocolNegotiationHandler("none") {
                            @Override
                            protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
                                if (!ApplicationProtocolNames.HTTP_2.equals(protocol)) {
                                    ready.completeExceptionally(new AssertionError("ALPN chose " + protocol));
                                    return;
                                }
                                if (style == Style.FRAME_CODEC) {
                                    Http2FrameCodec codec = Http2FrameCodecBuilder.forClient().build();
                                    ctx.pipeline().addLast(codec,
                                            new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()));
                                    Http2StreamMarks.attach(codec, handler);
                                } else {
                                    Http2Connection connection = new DefaultHttp2Connection(false);
                                    HttpToHttp2ConnectionHandler codec = new HttpToHttp2ConnectionHandlerBuilder()
                                            .connection(connection)
                                            .frameListener(new InboundHttp2ToHttpAdapterBuilder(connection)
                                                    .maxContentLength(BODY.length * 2).propagateSettings(false)
                                                    .build()).build();
                                    Http2StreamMarks.attach(codec, handler);
                                    ctx.pipeline().addLast(codec,
                                            new ChannelInboundHandlerAdapter() {
                                                @Override
                                                public void channelRead(ChannelHandlerContext c, Object msg) {
                                                    if (msg instanceof FullHttpResponse) {
                                                        ByteBuf content = ((FullHttpResponse) msg).content();
                                                        byte[] bytes = new byte[content.readableBytes()];
                                                        content.getBytes(content.readerIndex(), bytes);
                                                        body.complete(bytes);
                                                    }
                                                    ReferenceCountUtil.release(msg);
                                                }
                                            });
                                }
                                ready.complete(null);
                            }
                        });
                    }
                });
        Channel ch = perTest(new Closing(b.connect(InetAddress.getLoopbackAddress(), port).sync().channel())).channel;
        ready.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        if (style == Style.FRAME_CODEC) {
            Http2StreamChannel stream = new Http2StreamChannelBootstrap(ch).handler(new ChannelInboundHandlerAdapter() {
                @Override
                public void channelRead(ChannelHandlerContext c, Object msg) {
                    if (msg instanceof Http2DataFrame) {
                        Http2DataFrame data = (Http2DataFrame) msg;
                        byte[] bytes = new byte[data.content().readableBytes()];
                        data.content().getBytes(data.content().readerIndex(), bytes);
                        collected.writeBytes(bytes);
                        if (data.isEndStream()) {
                            body.complete(collected.toByteArray());
                        }
                    } else if (msg instanceof Http2HeadersFrame && ((Http2HeadersFrame) msg).isEndStream()) {
                        body.complete(collected.toByteArray());
                    }
                    ReferenceCountUtil.release(msg);
                }

                @Override
                public void channelInactive(ChannelHandlerContext c) {
                    body.completeExceptionally(new AssertionError("stream closed after " + collected.size()
                            + " bytes, without END_STREAM"));
                }
            }).open().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
            stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().method("GET").path("/")
                    .scheme("https").authority(TestHost.NAME), true));
        } else {
            HttpRequest request = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
            request.headers().set("host", TestHost.NAME)
                    .set(HttpConversionUtil.ExtensionHeaderNames.SCHEME.text(), HttpScheme.HTTPS.name());
            ch.writeAndFlush(request);
        }
        return new Client(ch, handler, body);
    }

    /** Closes a channel after the test. */
    private record Closing(Channel channel) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            channel.close().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource({"stylesAndCells", "stylesOnEpoll"})
    void nettyClientGetsEveryByteAndBothSidesCloseCleanly(Style style, Cell cell) throws Exception {
        H2Server server = perTest(new H2Server(cell, style, GRACE_MILLIS));
        Client client = nettyClient(cell, style, server.port());
        GracefulTlsCloseHandler ours = server.awaitHandler();

        byte[] received = client.body().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        TlsCloseEvent serverEvent = await(ours);
        TlsCloseEvent clientEvent = await(client.handler());

        InteropReport.observe("server " + describe(serverEvent) + "; client " + describe(clientEvent));
        assertThat(received.length).isEqualTo(BODY.length);
        assertThat(sha256(received)).isEqualTo(sha256(BODY));
        // GOAWAY, the drained stream, then our close_notify; the client's handler answers it.
        assertEvent(serverEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL,
                TlsCloseMode.SHUT_RDWR);
        assertEvent(clientEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        // The stream had ended (END_STREAM) before the GOAWAY's close: both ends between messages.
        assertThat(serverEvent.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(clientEvent.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
        client.channel().closeFuture().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(client.channel().isOpen()).isFalse();
    }

    /** Our server cuts the stream a Netty h2 client reads: the client's event is a cut message, its stream failed. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void nettyClientSeesTheStreamOurServerCutsAsACutMessage(Cell cell) throws Exception {
        H2Server server = perTest(new H2Server(cell, Style.FRAME_CODEC, GRACE_MILLIS, Answer.CUT));
        Client client = nettyClient(cell, Style.FRAME_CODEC, server.port());
        GracefulTlsCloseHandler ours = server.awaitHandler();

        TlsCloseEvent clientEvent = await(client.handler());
        TlsCloseEvent serverEvent = await(ours);
        Throwable bodyFailure = client.body().handle((b, t) -> t).get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);

        InteropReport.observe("client " + describe(clientEvent) + " (" + clientEvent + "), body: " + bodyFailure
                + "; server " + describe(serverEvent));
        assertTruncated(clientEvent, TlsCloseInitiator.PEER);
        assertThat(clientEvent.messageState()).as("%s", clientEvent).isEqualTo(MessageState.IN_MESSAGE);
        assertThat(clientEvent.isMessageCut()).isTrue();
        assertThat(clientEvent.toString()).contains(", in message");
        assertThat(bodyFailure).as("the stream's end").isInstanceOf(AssertionError.class)
                .hasMessageEndingWith("bytes, without END_STREAM");
        assertThat(serverEvent.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(serverEvent.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
    }
}
