package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse.BodyHandlers;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLParameters;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code java.net.http.HttpClient} (HTTP/1.1) against our Netty HTTP/1.1 server ({@link HttpServerCodec} after the
 * handler). The response has no Content-Length and {@code Connection: close}, so only the end of the connection tells
 * the client where the body ends. The client's own verdict is what {@code send()} returns: the body, or an exception.
 *
 * <p>Findings: on TLS 1.2 the client's engine answers our close_notify. On TLS 1.3 Java 17's client never answers it
 * (its engine does not reply by itself, and the client does not close its side), so our {@code close()} ends in
 * {@code TIMED_OUT}; Java 25's client answers. A body cut by a bare FIN is returned as complete, like curl, on both:
 * the client cannot tell; our side can.
 */
class JdkHttpClientTest extends InteropTest {

    private static final int BODY_SIZE = 256 * 1024;
    private static final byte[] BODY = body();
    /** Our wait for a close_notify that the client does not send (TLS 1.3). */
    private static final Duration SILENT_CLIENT = Duration.ofMillis(500);

    private static byte[] body() {
        byte[] body = new byte[BODY_SIZE];
        new Random(20261205).nextBytes(body);
        return body;
    }

    /** Answers every request with {@code body} (Connection: close, no length), then does what it is told. */
    private static final class CloseDelimitedResponder extends ChannelInboundHandlerAdapter {
        private final byte[] body;
        private final Apps.Then then;

        CloseDelimitedResponder(byte[] body, Apps.Then then) {
            this.body = body;
            this.then = then;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            boolean request = msg instanceof HttpRequest;
            boolean last = msg instanceof LastHttpContent;
            ReferenceCountUtil.release(msg);
            if (request) {
                HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
                head.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_OCTET_STREAM)
                        .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
                ctx.write(head);
                ctx.write(new DefaultHttpContent(Unpooled.wrappedBuffer(body)));
            }
            if (last) {
                ctx.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT).addListener(f -> {
                    if (then == Apps.Then.TRUNCATE) {
                        ctx.pipeline().firstContext().close();
                    } else if (then == Apps.Then.CLOSE) {
                        ctx.channel().close();
                    }
                });
            }
        }
    }

    /** Whether this Java's client answers our close_notify: on TLS 1.2 always; on TLS 1.3 seen from Java 25 on. */
    private static boolean answersCloseNotify(Cell cell) {
        return !cell.isTls13() || Runtime.version().feature() >= 25;
    }

    /** Where the client answers, a deadline no answer can miss; else a short one, which only silence reaches. */
    private static Duration readTimeout(Cell cell) {
        return answersCloseNotify(cell) ? LONG_TIMEOUT : SILENT_CLIENT;
    }

    private OurServer server(Cell cell, byte[] body, Apps.Then then) throws Exception {
        return perTest(OurServer.start(loops, cell,
                () -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(readTimeout(cell)).build(),
                () -> List.<ChannelHandler>of(new HttpServerCodec(), new CloseDelimitedResponder(body, then))));
    }

    private HttpClient client(Cell cell) {
        SSLParameters parameters = new SSLParameters();
        parameters.setProtocols(new String[] {cell.protocol()});
        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .sslContext(JdkSocketPeer.sslContext())
                .sslParameters(parameters)
                .connectTimeout(AWAIT)
                .build();
        perTest(() -> {
            if (client instanceof AutoCloseable) { // Java 21 and later
                ((AutoCloseable) client).close();
            }
        });
        return client;
    }

    /** Sends a GET; completes with the body or with what {@code send()} threw. */
    private static CompletableFuture<Object> get(HttpClient client, int port) {
        java.net.http.HttpRequest request = java.net.http.HttpRequest
                .newBuilder(URI.create("https://" + TestHost.NAME + ":" + port + "/"))
                .timeout(AWAIT).method("GET", BodyPublishers.noBody()).build();
        return client.sendAsync(request, BodyHandlers.ofByteArray())
                .<Object>thenApply(r -> r.statusCode() == 200 ? r.body() : new IOException("status " + r.statusCode()))
                .exceptionally(t -> t instanceof java.util.concurrent.CompletionException ? t.getCause() : t);
    }

    private static Object await(CompletableFuture<Object> outcome) throws Exception {
        try {
            return outcome.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    private static String verdict(Object outcome) {
        return outcome instanceof byte[] ? ((byte[]) outcome).length + " B body"
                : outcome.getClass().getName() + ": " + ((Throwable) outcome).getMessage();
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void gracefulCloseDelimitsTheBody(Cell cell) throws Exception {
        OurServer server = server(cell, BODY, Apps.Then.CLOSE);
        CompletableFuture<Object> outcome = get(client(cell), server.port());

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent(LONG_TIMEOUT.plus(AWAIT));
        Object body = await(outcome);

        InteropReport.observe(describe(event));
        InteropReport.observe("Java " + Runtime.version().feature() + " HttpClient: " + verdict(body));
        assertThat(body).as("HttpClient's outcome: %s", verdict(body)).isInstanceOf(byte[].class);
        assertThat(sha256((byte[]) body)).as("SHA-256 of the body").isEqualTo(sha256(BODY));
        ours.assertClosedWithOneEvent();
        if (answersCloseNotify(cell)) {
            assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        } else {
            // If this starts failing, this Java's client began to answer close_notify on TLS 1.3: update
            // answersCloseNotify and docs/interop.md.
            assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
            assertThat(event.elapsed()).isGreaterThanOrEqualTo(SILENT_CLIENT);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void truncatedBody(Cell cell) throws Exception {
        byte[] half = Arrays.copyOf(BODY, BODY_SIZE / 2);
        OurServer server = server(cell, half, Apps.Then.TRUNCATE);
        CompletableFuture<Object> outcome = get(client(cell), server.port());

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();
        Object body = await(outcome);

        InteropReport.observe(describe(event));
        InteropReport.observe("HttpClient: " + verdict(body));
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(cause.getMessage()).startsWith("the channel became inactive before the peer's close_notify, ");
        ours.assertClosedWithOneEvent();
        // What the client really does: the FIN ends the body. If this starts failing, it began to detect the
        // truncation: update docs/interop.md.
        assertThat(body).as("HttpClient's outcome: %s", verdict(body)).isInstanceOf(byte[].class);
        assertThat(sha256((byte[]) body)).as("the client kept the truncated body as if complete")
                .isEqualTo(sha256(half));
    }
}
