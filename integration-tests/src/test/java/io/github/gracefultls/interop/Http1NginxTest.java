package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.github.gracefultls.testing.FreePorts;
import io.github.gracefultls.testing.Nginx;
import io.github.gracefultls.testing.PeerProcess;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContentDecompressor;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpVersion;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Our HTTP/1.x client ({@code HttpClientCodec}, {@link HttpTlsTruncationHandler}, {@code HttpObjectAggregator})
 * against nginx (1.22, OpenSSL 3.0) ending the connection itself: a {@code Connection: close} response with a
 * Content-Length, and a body delimited by the end of the connection (an HTTP/1.0 request for a gzip-compressed file:
 * nginx cannot announce a length and may not chunk). Finding: nginx sends close_notify before its FIN in both, so
 * the closure is clean and the responses complete; the Content-Length response had ended before the closure
 * (between messages), the close-delimited one ends with it (in message, not cut). One nginx for all cells.
 */
class Http1NginxTest extends InteropTest {

    private static final String SMALL = "hello from nginx\n";
    private static final int FILE_SIZE = 102_400;

    private int tls12Port;
    private int tls13Port;

    private PeerProcess nginx() {
        return shared("nginx", () -> {
            Path dir = workDirectory.resolve("nginx");
            Path www = dir.resolve("www");
            try {
                Files.createDirectories(www);
                Files.write(www.resolve("big.txt"), lines(FILE_SIZE));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            PeerProcess nginx = Nginx.start(dir, "", port -> {
                tls12Port = port;
                tls13Port = FreePorts.freePort();
                return "http {\n"
                        + "  access_log " + dir.resolve("access.log") + ";\n"
                        + Nginx.httpTempPaths(dir)
                        + server(tls12Port, "TLSv1.2", www)
                        + server(tls13Port, "TLSv1.3", www)
                        + "}\n";
            }, LISTEN);
            try {
                nginx.awaitListening(tls13Port, LISTEN);
            } catch (AssertionError e) {
                nginx.close();
                throw e;
            }
            return nginx;
        });
    }

    private String server(int port, String protocol, Path www) {
        return "  server {\n"
                + "    listen 127.0.0.1:" + port + " ssl;\n"
                + "    ssl_certificate " + pem.certificateChain() + ";\n"
                + "    ssl_certificate_key " + pem.privateKey() + ";\n"
                + "    ssl_protocols " + protocol + ";\n"
                + "    location = / { return 200 \"" + SMALL.replace("\n", "\\n") + "\"; }\n"
                + "    location = /big.txt {\n"
                + "      root " + www + ";\n"
                + "      default_type text/plain;\n"
                + "      gzip on; gzip_http_version 1.0; gzip_min_length 0; gzip_types text/plain;\n"
                + "    }\n"
                + "  }\n";
    }

    /** Keeps the headers of the first response head as the codec decoded it, before anything rewrites them. */
    private static final class FirstHead extends ChannelInboundHandlerAdapter {
        final CompletableFuture<HttpHeaders> headers = new CompletableFuture<>();

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof HttpResponse) {
                headers.complete(((HttpResponse) msg).headers().copy());
            }
            ctx.fireChannelRead(msg);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void aConnectionCloseResponseEndsCleanlyBetweenMessages(Cell cell) throws Exception {
        nginx();
        HttpOutcomes outcomes = new HttpOutcomes();
        Endpoint client = perTest(Endpoint.connect(loops, cell, cell.isTls13() ? tls13Port : tls12Port,
                new GracefulTlsCloseHandler(), new HttpClientCodec(), new HttpTlsTruncationHandler(),
                new HttpObjectAggregator(1 << 20), outcomes));
        DefaultFullHttpRequest request = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
        request.headers().set(HttpHeaderNames.HOST, TestHost.NAME).set(HttpHeaderNames.CONNECTION,
                HttpHeaderValues.CLOSE);

        client.channel.writeAndFlush(request);
        HttpOutcomes.Message response = outcomes.await(AWAIT, client);
        TlsCloseEvent event = client.awaitEvent();

        InteropReport.observe(describe(event));
        InteropReport.observe(response.toString());
        assertThat(response.status()).isEqualTo(200);
        assertThat(response.success()).as("%s", response).isTrue();
        assertThat(response.headers().get(HttpHeaderNames.CONNECTION)).isEqualToIgnoringCase("close");
        assertThat(new String(response.content(), StandardCharsets.US_ASCII)).isEqualTo(SMALL);
        // nginx sends close_notify, then FIN, after a Connection: close response.
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        assertThat(event.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(event.isMessageCut()).isFalse();
        assertThat(outcomes.timeline()).containsExactly(response, event);
        client.assertClosedWithOneEvent();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void aBodyDelimitedByACleanEndIsComplete(Cell cell) throws Exception {
        nginx();
        HttpOutcomes outcomes = new HttpOutcomes();
        FirstHead head = new FirstHead();
        // The decompressor between the codec and the companion passes HTTP objects on as they come.
        Endpoint client = perTest(Endpoint.connect(loops, cell, cell.isTls13() ? tls13Port : tls12Port,
                new GracefulTlsCloseHandler(), new HttpClientCodec(), head, new HttpContentDecompressor(),
                new HttpTlsTruncationHandler(), new HttpObjectAggregator(1 << 20), outcomes));
        DefaultFullHttpRequest request = new DefaultFullHttpRequest(HttpVersion.HTTP_1_0, HttpMethod.GET,
                "/big.txt");
        request.headers().set(HttpHeaderNames.HOST, TestHost.NAME).set(HttpHeaderNames.ACCEPT_ENCODING,
                HttpHeaderValues.GZIP);

        client.channel.writeAndFlush(request);
        HttpOutcomes.Message response = outcomes.await(AWAIT, client);
        TlsCloseEvent event = client.awaitEvent();

        HttpHeaders wire = head.headers.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        InteropReport.observe(describe(event));
        InteropReport.observe(response + "; head " + wire);
        assertThat(wire.get(HttpHeaderNames.CONTENT_ENCODING)).as("%s", wire).isEqualTo("gzip");
        assertThat(wire.contains(HttpHeaderNames.CONTENT_LENGTH)).as("a Content-Length in %s", wire).isFalse();
        assertThat(wire.contains(HttpHeaderNames.TRANSFER_ENCODING)).as("chunked in %s", wire).isFalse();
        assertThat(response.status()).isEqualTo(200);
        assertThat(response.success()).as("%s", response).isTrue();
        assertBytes(response.content(), lines(FILE_SIZE), "the decompressed body");
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        // The closure is the body's end: it came inside the message, and cut nothing.
        assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE);
        assertThat(event.isMessageCut()).isFalse();
        assertThat(outcomes.timeline()).containsExactly(event, response);
        client.assertClosedWithOneEvent();
    }
}
