package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * curl (7.88, OpenSSL 3.0) uploading to our HTTP/1.1 server ({@code HttpServerCodec},
 * {@link HttpTlsTruncationHandler}, {@code HttpObjectAggregator}), one curl per cell, with a Content-Length body and
 * a chunked one. Killed (SIGKILL) once our server has seen {@value #KILL_AFTER} bytes of its rate-limited upload,
 * curl's kernel ends the stream without close_notify: the aggregated request fails with a
 * {@link TlsTruncationException} saying how much of the body came, and the outcome says a message was cut. A
 * complete upload, answered by our server, is a successful request and a clean end between messages (curl ends its
 * keep-alive connection with close_notify).
 */
class Http1CurlUploadTest extends InteropTest {

    private static final int UPLOAD_SIZE = 2 * 1024 * 1024;
    /** Bytes of the body our server sees before curl is killed. */
    private static final int KILL_AFTER = 128 * 1024;
    /** Slow enough that the upload is far from done when the server has seen {@link #KILL_AFTER} bytes. */
    private static final String LIMIT_RATE = "256K";
    private static final Duration EXIT = Duration.ofSeconds(60);

    private byte[] upload;
    private Path uploadFile;

    enum Framing {
        CONTENT_LENGTH, CHUNKED
    }

    static Stream<Arguments> framingsAndCells() {
        List<Arguments> cases = new ArrayList<>();
        for (Framing framing : Framing.values()) {
            Cell.nio().forEach(cell -> cases.add(Arguments.of(named(framing.toString(), framing), cell)));
        }
        return cases.stream();
    }

    @BeforeAll
    void writeUpload() throws Exception {
        upload = new byte[UPLOAD_SIZE];
        new Random(20261206).nextBytes(upload);
        uploadFile = workDirectory.resolve("upload.bin");
        Files.write(uploadFile, upload);
    }

    /** Between the companion and the aggregator: counts the body's bytes, and says when {@code threshold} came. */
    private static final class BodySeen extends ChannelInboundHandlerAdapter {
        private final long threshold;
        final CompletableFuture<Long> reached = new CompletableFuture<>();
        private long bytes;

        BodySeen(long threshold) {
            this.threshold = threshold;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof HttpContent) {
                bytes += ((HttpContent) msg).content().readableBytes();
                if (bytes >= threshold) {
                    reached.complete(bytes);
                }
            }
            ctx.fireChannelRead(msg);
        }
    }

    /** Answers a complete request with "received N" and keeps the connection. */
    private static final class Answer extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof FullHttpRequest && ((FullHttpRequest) msg).decoderResult().isSuccess()) {
                byte[] body = ("received " + ((FullHttpRequest) msg).content().readableBytes() + "\n")
                        .getBytes(StandardCharsets.US_ASCII);
                FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                        Unpooled.wrappedBuffer(body));
                response.headers().set(HttpHeaderNames.CONTENT_LENGTH, body.length);
                ctx.writeAndFlush(response);
            }
            ctx.fireChannelRead(msg);
        }
    }

    private OurServer server(Cell cell, long threshold) throws Exception {
        return perTest(OurServer.start(loops, cell, GracefulTlsCloseHandler::new, () -> List.<ChannelHandler>of(
                new HttpServerCodec(), new HttpTlsTruncationHandler(), new BodySeen(threshold),
                new HttpObjectAggregator(2 * UPLOAD_SIZE), new Answer(), new HttpOutcomes())));
    }

    private PeerProcess curl(Cell cell, int port, Framing framing, boolean slow, Path output) {
        String bin = Peers.require(Peers.Program.CURL).toString();
        String version = cell.isTls13() ? "1.3" : "1.2";
        List<String> command = new ArrayList<>(List.of(bin, "--silent", "--show-error", "--http1.1",
                "--tlsv" + version, "--tls-max", version, "--cacert", pem.caCertificate().toString(),
                "--resolve", TestHost.NAME + ":" + port + ":127.0.0.1", "--max-time", "60",
                "-H", "Expect:", "--data-binary", "@" + uploadFile, "--output", output.toString(),
                "--write-out", "%{http_code}"));
        if (framing == Framing.CHUNKED) {
            command.addAll(List.of("-H", "Transfer-Encoding: chunked"));
        }
        if (slow) {
            command.addAll(List.of("--limit-rate", LIMIT_RATE));
        }
        command.add("https://" + TestHost.NAME + ":" + port + "/upload");
        return perTest(PeerProcess.start("curl-upload", command, workDirectory));
    }

    private static String described(Framing framing) {
        return framing == Framing.CHUNKED ? " (chunked)" : " of " + UPLOAD_SIZE + " (Content-Length)";
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("framingsAndCells")
    void anUploadCutByAKilledCurlFailsWithATruncationSayingWhere(Framing framing, Cell cell) throws Exception {
        OurServer server = server(cell, KILL_AFTER);
        PeerProcess curl = curl(cell, server.port(), framing, true, workDirectory.resolve("out-" + System.nanoTime()));
        Endpoint ours = server.awaitAccepted();
        BodySeen seen = ours.channel.pipeline().get(BodySeen.class);
        HttpOutcomes outcomes = ours.channel.pipeline().get(HttpOutcomes.class);

        long seenWhenKilled = seen.reached.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        ProcessHandle.of(curl.pid()).ifPresent(ProcessHandle::destroyForcibly); // SIGKILL
        int exit = curl.awaitExit(EXIT);
        HttpOutcomes.Message request = outcomes.await(AWAIT, ours);
        TlsCloseEvent event = ours.awaitEvent();
        ours.awaitClosed();
        ours.rec.awaitInactive(AWAIT);

        InteropReport.observe(describe(event));
        InteropReport.observe(request + "; seen when killed " + seenWhenKilled + "; curl exit " + exit
                + "; exceptions " + ours.rec.exceptions());
        assertThat(exit).as("curl killed by SIGKILL").isEqualTo(128 + 9);
        TlsTruncationException tls = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE);
        assertThat(event.isMessageCut()).isTrue();
        int received = request.content().length;
        assertThat(received).as("bytes of the body that came").isGreaterThanOrEqualTo(KILL_AFTER)
                .isLessThan(UPLOAD_SIZE);
        assertBytes(request.content(), Arrays.copyOf(upload, received), "the body before the cut");
        assertThat(request.success()).as("%s", request).isFalse();
        assertThat(request.cause()).isInstanceOf(TlsTruncationException.class)
                .hasMessage("the TLS stream ended without the peer's close_notify (TRUNCATED) inside an HTTP request "
                        + "body, after " + received + " bytes of content" + described(framing));
        assertThat(request.cause().getCause()).isSameAs(tls);
        assertThat(outcomes.timeline()).containsExactly(event, request);
        assertThat(outcomes.remaining()).isEmpty();
        assertThat(ours.rec.eventsOfType(TlsCloseEvent.class)).hasSize(1);
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("framingsAndCells")
    void aCompleteUploadIsAnsweredAndEndsCleanlyBetweenMessages(Framing framing, Cell cell) throws Exception {
        OurServer server = server(cell, Long.MAX_VALUE);
        Path output = workDirectory.resolve("out-" + System.nanoTime());
        PeerProcess curl = curl(cell, server.port(), framing, false, output);
        Endpoint ours = server.awaitAccepted();
        HttpOutcomes outcomes = ours.channel.pipeline().get(HttpOutcomes.class);

        HttpOutcomes.Message request = outcomes.await(AWAIT, ours);
        int exit = curl.awaitExit(EXIT);
        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        InteropReport.observe(request + "; curl exit " + exit + ", " + curl.stdout());
        assertThat(request.success()).as("%s", request).isTrue();
        assertBytes(request.content(), upload, "the uploaded body");
        assertThat(exit).as("curl exit status; stderr: %s", curl.stderr()).isZero();
        assertThat(curl.stdout()).isEqualTo("200");
        assertThat(Files.readString(output)).isEqualTo("received " + UPLOAD_SIZE + "\n");
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        assertThat(event.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(event.isMessageCut()).isFalse();
        ours.assertClosedWithOneEvent();
        assertThat(outcomes.timeline()).containsExactly(request, event);
    }
}
