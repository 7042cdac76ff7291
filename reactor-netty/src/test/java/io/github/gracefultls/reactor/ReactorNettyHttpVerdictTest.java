package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.testing.Tls;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import reactor.core.Exceptions;
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.channel.AbortedException;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.client.PrematureCloseException;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * The HTTP verdict through Reactor Netty: a body that a peer cut by ending TLS without {@code close_notify} is an
 * error the application sees, with the module, and what Reactor Netty makes of the same cut without it. The
 * truncating peers are JDK sockets that drop TCP under the TLS session ({@link RawTlsPeers}).
 */
class ReactorNettyHttpVerdictTest {

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int BODY = 102_400;
    private static final int SENT = 51_200;
    private static final byte[] PAYLOAD = payload(BODY);

    /** How the truncating server frames its response body: the head, and the body as it goes on the wire. */
    enum Framing {
        CLOSE_DELIMITED("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"),
        CONTENT_LENGTH("HTTP/1.1 200 OK\r\nContent-Length: " + BODY + "\r\n\r\n"),
        CHUNKED("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");

        /** Chunks of 1 KiB: 100 for the body, cut after 50 of them (51,200 bytes of content). */
        private static final int CHUNK = 1024;

        final String head;

        Framing(String head) {
            this.head = head;
        }

        /** The whole body as framed on the wire (chunked: with its last chunk). */
        byte[] wire() {
            if (this != CHUNKED) {
                return PAYLOAD;
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (int off = 0; off < BODY; off += CHUNK) {
                out.writeBytes((Integer.toHexString(CHUNK) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(PAYLOAD, off, CHUNK);
                out.writeBytes("\r\n".getBytes(StandardCharsets.US_ASCII));
            }
            out.writeBytes("0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            return out.toByteArray();
        }

        /** How many bytes of {@link #wire()} carry the first {@link #SENT} bytes of content, whole chunks. */
        int cutAt() {
            return this == CHUNKED ? SENT / CHUNK * (Integer.toHexString(CHUNK).length() + 2 + CHUNK + 2) : SENT;
        }
    }

    private final BlockingQueue<TlsClosure> closures = new LinkedBlockingQueue<>();
    private final List<AutoCloseable> cleanup = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (int i = cleanup.size() - 1; i >= 0; i--) {
            cleanup.get(i).close();
        }
    }

    private static byte[] payload(int length) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) ('a' + i % 26);
        }
        return bytes;
    }

    private ReactorNettyTlsClose module() {
        return ReactorNettyTlsClose.builder()
                .handler(() -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(WAIT).build())
                .onClose(closures::add)
                .build();
    }

    private RawTlsPeers.CuttingServer cuttingServer(Framing framing, boolean clean) throws Exception {
        byte[] wire = framing.wire();
        RawTlsPeers.CuttingServer server = new RawTlsPeers.CuttingServer(framing.head, wire,
                clean ? wire.length : framing.cutAt(), clean);
        cleanup.add(server);
        return server;
    }

    private static HttpClient client(int port) {
        return client(port, SslProvider.JDK, Tls.TLS_1_3);
    }

    private static HttpClient client(int port, SslProvider provider, String protocol) {
        SslContext context = Tls.clientContext(provider, protocol);
        return HttpClient.create(ConnectionProvider.newConnection())
                .host("127.0.0.1")
                .port(port)
                .secure(spec -> spec.sslContext(context));
    }

    private static Mono<Integer> bodyLength(HttpClient client) {
        return client.get().uri("/").responseContent().aggregate().map(b -> b.readableBytes());
    }

    private TlsClosure nextClosure() throws InterruptedException {
        TlsClosure c = closures.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(c).as("a TLS closure within " + WAIT).isNotNull();
        return c;
    }

    /**
     * The case: a close-delimited response (no Content-Length, {@code Connection: close}) cut after 51,200
     * of 102,400 bytes by a bare TCP end. Without the module, Reactor Netty's {@code HttpClient} hands the application
     * the 51,200 bytes as a complete body; with it, the body's {@code Mono} fails with a
     * {@link TlsTruncationException}.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void cutCloseDelimitedBodyIsAnErrorWithTheModuleAndASuccessWithout(SslProvider provider, String protocol)
            throws Exception {
        byte[] wire = Framing.CLOSE_DELIMITED.wire();
        RawTlsPeers.CuttingServer server = new RawTlsPeers.CuttingServer(Framing.CLOSE_DELIMITED.head, wire,
                Framing.CLOSE_DELIMITED.cutAt(), false, protocol);
        cleanup.add(server);

        Integer without = bodyLength(client(server.port(), provider, protocol)).block(WAIT);
        assertThat(without).as("without the module: the cut body, as a success").isEqualTo(SENT);

        Throwable with = Exceptions.unwrap(catchThrowable(
                () -> bodyLength(module().apply(client(server.port(), provider, protocol))).block(WAIT)));
        assertThat(with).as("with the module").isInstanceOf(TlsTruncationException.class)
                .hasMessageContaining("inside an HTTP response body, after " + SENT + " bytes of content")
                .hasMessageContaining("delimited by the end of the connection");
        TlsCloseEvent event = nextClosure().event();
        assertThat(event.status()).as("%s", event).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(event.isMessageCut()).as("%s", event).isTrue();
    }

    /** A Content-Length body cut short: an error either way; with the module its cause says the TLS end cut it. */
    @Test
    void cutContentLengthBodyIsATlsTruncationWithTheModule() throws Exception {
        RawTlsPeers.CuttingServer server = cuttingServer(Framing.CONTENT_LENGTH, false);

        Throwable without = Exceptions.unwrap(catchThrowable(() -> bodyLength(client(server.port())).block(WAIT)));
        assertThat(without).as("without the module").isInstanceOf(PrematureCloseException.class);

        Throwable with = Exceptions.unwrap(
                catchThrowable(() -> bodyLength(module().apply(client(server.port()))).block(WAIT)));
        assertThat(with).as("with the module").isInstanceOf(TlsTruncationException.class)
                .hasMessageContaining("after " + SENT + " bytes of content of " + BODY + " (Content-Length)");
        assertThat(nextClosure().event().isMessageCut()).isTrue();
    }

    /** A chunked body cut after whole chunks: an error either way; with the module, a TLS truncation. */
    @Test
    void cutChunkedBodyIsATlsTruncationWithTheModule() throws Exception {
        RawTlsPeers.CuttingServer server = cuttingServer(Framing.CHUNKED, false);

        Throwable without = Exceptions.unwrap(catchThrowable(() -> bodyLength(client(server.port())).block(WAIT)));
        assertThat(without).as("without the module").isInstanceOf(PrematureCloseException.class);

        Throwable with = Exceptions.unwrap(
                catchThrowable(() -> bodyLength(module().apply(client(server.port()))).block(WAIT)));
        assertThat(with).as("with the module").isInstanceOf(TlsTruncationException.class)
                .hasMessageContaining("after " + SENT + " bytes of content (chunked)");
        assertThat(nextClosure().event().isMessageCut()).isTrue();
    }

    /** A clean end (close_notify, then FIN) after the whole response, in each framing: the body, complete. */
    @ParameterizedTest
    @EnumSource(Framing.class)
    void cleanEndDeliversTheBodyWithTheModule(Framing framing) throws Exception {
        RawTlsPeers.CuttingServer server = cuttingServer(framing, true);

        assertThat(bodyLength(module().apply(client(server.port()))).block(WAIT)).isEqualTo(BODY);
        TlsCloseEvent event = nextClosure().event();
        assertThat(event.isClean()).as("%s", event).isTrue();
        assertThat(event.isMessageCut()).as("%s", event).isFalse();
    }

    /**
     * A request body cut by a client that drops TCP: the server's {@code receive()} fails with a
     * {@link TlsTruncationException} with the module; without it, with whatever Reactor Netty makes of a connection
     * that went away (not a TLS truncation).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void cutRequestBodyIsATlsTruncationOnTheServerWithTheModule(SslProvider provider, String protocol)
            throws Exception {
        Throwable without = serverReceiving(false, provider, protocol);
        assertThat(without).as("without the module").isInstanceOf(AbortedException.class);

        Throwable with = serverReceiving(true, provider, protocol);
        assertThat(with).as("with the module").isInstanceOf(TlsTruncationException.class)
                .hasMessageContaining("inside an HTTP request body, after " + SENT + " bytes of content of "
                        + BODY + " (Content-Length)");
        TlsCloseEvent event = nextClosure().event();
        assertThat(event.status()).as("%s", event).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(event.isMessageCut()).as("%s", event).isTrue();
    }

    /** What a server's handler sees of a request body cut after {@link #SENT} bytes: the error of its receive(). */
    private Throwable serverReceiving(boolean withModule, SslProvider provider, String protocol) throws Exception {
        CompletableFuture<Throwable> seen = new CompletableFuture<>();
        HttpServer server = HttpServer.create()
                .host("127.0.0.1")
                .port(0)
                .secure(spec -> spec.sslContext(Tls.serverContext(provider, protocol)))
                .handle((req, res) -> req.receive().aggregate().asString()
                        .doOnNext(body -> seen.complete(new AssertionError("a complete body of "
                                + body.length() + " bytes")))
                        .doOnError(seen::complete)
                        .then(res.sendString(Mono.just("done")).then()));
        DisposableServer bound = (withModule ? module().apply(server) : server).bindNow(WAIT);
        cleanup.add(() -> bound.disposeNow(WAIT));

        RawTlsPeers.postCutThenDropTcp(bound.port(), "/upload", PAYLOAD, SENT, protocol);

        Throwable t = seen.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(t).as("the server's receive()").isNotInstanceOf(AssertionError.class);
        return t;
    }
}
