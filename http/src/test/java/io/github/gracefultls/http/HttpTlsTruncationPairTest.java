package io.github.gracefultls.http;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPipelineException;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.DecoderResultProvider;
import io.netty.handler.codec.PrematureChannelClosureException;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static io.github.gracefultls.testing.Tls.casesWithProvidersAndProtocols;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatExceptionOfType;

/**
 * {@link HttpTlsTruncationHandler} between real {@code SslHandler}s: an HTTP/1.x body cut by a stream that ended
 * without {@code close_notify} never reaches the application as complete, whatever its framing and whichever side
 * reads it; an end between messages or a clean end changes nothing; and what Netty's codecs do without it, which is
 * why it exists.
 */
class HttpTlsTruncationPairTest {

    private static final int BODY = 102_400;
    private static final int SENT = 51_200;
    private static final byte[] PAYLOAD = payload(BODY);

    /** How the client's transport ends after the server stopped without close_notify. */
    enum End {
        /** A FIN on a channel that allows half-closure: {@code ChannelInputShutdownEvent}. */
        FIN,
        /** The transport closes underneath (an RST): {@code channelInactive}. */
        RESET
    }

    /** How the server frames its response body, and the head it sends for it. */
    enum Framing {
        CLOSE_DELIMITED("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"),
        CONTENT_LENGTH("HTTP/1.1 200 OK\r\nContent-Length: " + BODY + "\r\n\r\n"),
        CHUNKED("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");

        final String head;

        Framing(String head) {
            this.head = head;
        }

        /** The head and the first {@code bodyBytes} of the body, framed. */
        byte[] firstBytes(int bodyBytes) {
            StringBuilder b = new StringBuilder(head);
            String body = new String(PAYLOAD, 0, bodyBytes, StandardCharsets.ISO_8859_1);
            if (this == CHUNKED) {
                for (int i = 0; i < bodyBytes; i += 8192) {
                    int n = Math.min(8192, bodyBytes - i);
                    b.append(Integer.toHexString(n)).append("\r\n").append(body, i, i + n).append("\r\n");
                }
            } else {
                b.append(body);
            }
            return b.toString().getBytes(StandardCharsets.ISO_8859_1);
        }

        String described() {
            switch (this) {
                case CHUNKED: return " (chunked)";
                case CONTENT_LENGTH: return " of " + BODY + " (Content-Length)";
                default: return " (delimited by the end of the connection)";
            }
        }
    }

    static Stream<Arguments> framingsAndEnds() {
        List<Object> cases = new ArrayList<>();
        for (Framing framing : Framing.values()) {
            for (End end : End.values()) {
                cases.add(Named.of(framing + " " + end, new Object[] {framing, end}));
            }
        }
        return casesWithProvidersAndProtocols(cases.toArray());
    }

    // ---- the client reads a cut response

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("framingsAndEnds")
    void aCutResponseAggregatesToAFailedMessageWhoseCauseSaysWhere(Object[] c, SslProvider provider, String protocol) {
        Framing framing = (Framing) c[0];
        End end = (End) c[1];
        try (Client client = new Client(provider, protocol, true, true)) {
            client.serverSends(framing.firstBytes(SENT));
            client.serverDropsTcp(end);

            TlsCloseEvent event = client.app.event;
            assertThat(event.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE);
            assertThat(event.isMessageCut()).isTrue();
            FullHttpResponse response = client.app.single(FullHttpResponse.class);
            assertThat(response.decoderResult().isFailure()).as("decoder result of %s", response).isTrue();
            TlsTruncationException cause = (TlsTruncationException) response.decoderResult().cause();
            assertThat(cause).hasMessage("the TLS stream ended without the peer's close_notify (TRUNCATED) inside an "
                    + "HTTP response body, after " + SENT + " bytes of content" + framing.described());
            assertThat(cause.getCause()).isSameAs(event.cause());
            assertThat(cause.undecodedBytes()).isZero();
            assertThat(ByteBufUtil.getBytes(response.content())).isEqualTo(slice(PAYLOAD, SENT));
            assertThat(client.app.eventBeforeMessages()).isTrue();
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("framingsAndEnds")
    void aCutResponseStreamsItsContentThenAFailedLastContent(Object[] c, SslProvider provider, String protocol) {
        Framing framing = (Framing) c[0];
        End end = (End) c[1];
        try (Client client = new Client(provider, protocol, true, false)) {
            client.serverSends(framing.firstBytes(SENT));
            client.serverDropsTcp(end);

            List<HttpObject> objects = client.app.objects;
            assertThat(objects.get(0)).isInstanceOf(HttpResponse.class);
            LastHttpContent last = (LastHttpContent) objects.get(objects.size() - 1);
            assertThat(last.decoderResult().cause()).isInstanceOf(TlsTruncationException.class);
            long content = objects.stream().filter(o -> o instanceof HttpContent)
                    .mapToLong(o -> ((HttpContent) o).content().readableBytes()).sum();
            assertThat(content).isEqualTo(SENT);
            assertThat(objects.stream().filter(o -> o instanceof LastHttpContent)).hasSize(1);
            assertThat(objects.subList(0, objects.size() - 1))
                    .allSatisfy(o -> assertThat(((DecoderResultProvider) o).decoderResult().isSuccess()).isTrue());
        }
    }

    /**
     * What Netty's codecs do without the companion, the reason it exists: a cut body delimited by the end of the
     * connection aggregates to a successful, complete-looking response; of a cut Content-Length or chunked body the
     * application gets no message, only the aggregator's {@code PrematureChannelClosureException} (and without an
     * aggregator, not even that).
     */
    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("framingsAndEnds")
    void withoutTheCompanionNettyTakesACutCloseDelimitedBodyAsComplete(Object[] c, SslProvider provider,
                                                                        String protocol) {
        Framing framing = (Framing) c[0];
        End end = (End) c[1];
        try (Client client = new Client(provider, protocol, false, true)) {
            client.serverSends(framing.firstBytes(SENT));
            client.serverDropsTcp(end);

            assertThat(client.app.event.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(client.app.event.messageState()).isEqualTo(MessageState.UNMARKED);
            if (framing == Framing.CLOSE_DELIMITED) {
                FullHttpResponse response = client.app.single(FullHttpResponse.class);
                assertThat(response.decoderResult().isSuccess()).isTrue();
                assertThat(response.content().readableBytes()).isEqualTo(SENT);
            } else {
                assertThat(client.app.objects).isEmpty();
                assertThat(client.app.exceptions).singleElement().isInstanceOf(PrematureChannelClosureException.class);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void aCleanEndOfACloseDelimitedBodyIsAComplete(SslProvider provider, String protocol) {
        try (Client client = new Client(provider, protocol, true, true)) {
            client.serverSends(Framing.CLOSE_DELIMITED.firstBytes(BODY));
            client.pair.server().close(); // close_notify after the body
            client.pair.pump();

            TlsCloseEvent event = client.app.event;
            assertThat(event.isClean()).isTrue();
            assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE); // the end is the body's end
            assertThat(event.isMessageCut()).isFalse();
            FullHttpResponse response = client.app.single(FullHttpResponse.class);
            assertThat(response.decoderResult().isSuccess()).isTrue();
            assertThat(ByteBufUtil.getBytes(response.content())).isEqualTo(PAYLOAD);
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("framingsAndEnds")
    void aTruncationAfterACompleteResponseIsBetweenMessagesAndChangesNothing(Object[] c, SslProvider provider,
                                                                            String protocol) {
        Framing framing = (Framing) c[0];
        End end = (End) c[1];
        if (framing == Framing.CLOSE_DELIMITED) {
            return; // its end is the connection's end: covered above
        }
        try (Client client = new Client(provider, protocol, true, true)) {
            byte[] complete = framing == Framing.CHUNKED
                    ? concat(framing.firstBytes(BODY), "0\r\n\r\n".getBytes(StandardCharsets.US_ASCII))
                    : framing.firstBytes(BODY);
            client.serverSends(complete);
            client.serverDropsTcp(end);

            TlsCloseEvent event = client.app.event;
            assertThat(event.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(event.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
            assertThat(event.isMessageCut()).isFalse();
            assertThat(event.toString()).contains(", between messages, ");
            FullHttpResponse response = client.app.single(FullHttpResponse.class);
            assertThat(response.decoderResult().isSuccess()).isTrue();
            assertThat(ByteBufUtil.getBytes(response.content())).isEqualTo(PAYLOAD);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void aHeadCutAfterItsStatusLineFailsWithTheTruncationAsCause(SslProvider provider, String protocol) {
        try (Client client = new Client(provider, protocol, true, true)) {
            client.serverSends("HTTP/1.1 200 OK\r\nContent-Len".getBytes(StandardCharsets.US_ASCII));
            client.serverDropsTcp(End.RESET);

            assertThat(client.app.event.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
            FullHttpResponse response = client.app.single(FullHttpResponse.class);
            Throwable cause = response.decoderResult().cause();
            assertThat(cause).isInstanceOf(TlsTruncationException.class)
                    .hasMessage("the TLS stream ended without the peer's close_notify (TRUNCATED) inside an HTTP "
                            + "response head");
            assertThat(cause.getSuppressed()).singleElement().isInstanceOf(PrematureChannelClosureException.class);
        }
    }

    /**
     * A head that Netty's decoder rejects for its framing (an unparsable or a doubled Content-Length) reaches the
     * application as it would without the companion: failed with the decoder's own cause, never turned into an
     * exception of the companion's, and nothing leaks.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("badContentLengths")
    void aHeadRejectedForItsContentLengthPassesWithTheDecodersCause(String contentLength) {
        try (Client client = new Client(SslProvider.JDK, "TLSv1.3", true, false)) {
            client.serverSends(("HTTP/1.1 200 OK\r\nContent-Length: " + contentLength + "\r\n\r\nbody")
                    .getBytes(StandardCharsets.US_ASCII));

            assertThat(client.app.exceptions).as("exceptions that reached the application").isEmpty();
            HttpResponse head = (HttpResponse) client.app.objects.get(0);
            assertThat(head.decoderResult().isFailure()).as("decoder result of %s", head).isTrue();
            assertThat(head.decoderResult().cause()).isNotInstanceOf(TlsTruncationException.class);

            client.serverDropsTcp(End.FIN);
            assertThat(client.app.event.messageState()).as("the rejected message is over")
                    .isEqualTo(MessageState.BETWEEN_MESSAGES);
            assertThat(client.app.exceptions).isEmpty();
        }
    }

    static Stream<String> badContentLengths() {
        return Stream.of("abc", "5, 6", "-1");
    }

    // ---- the server reads a cut request

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("framingsAndEnds")
    void aCutRequestBodyFailsOnTheServer(Object[] c, SslProvider provider, String protocol) {
        Framing framing = (Framing) c[0];
        End end = (End) c[1];
        if (framing == Framing.CLOSE_DELIMITED) {
            return; // a request body is never delimited by the end of the connection
        }
        App app = new App();
        try (TlsPair pair = TlsPair.builder(provider, protocol).halfClosure(end == End.FIN)
                .client(p -> p.addLast(new ChannelInboundHandlerAdapter()))
                .server(p -> p.addLast(new GracefulTlsCloseHandler(), new HttpServerCodec(),
                        new HttpTlsTruncationHandler(), new HttpObjectAggregator(1 << 20), app))
                .build()) {
            pair.handshake();
            String head = framing == Framing.CHUNKED ? "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                    : "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + BODY;
            byte[] sent = framing.firstBytes(SENT);
            byte[] request = concat((head + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII),
                    slice(sent, framing.head.length(), sent.length));
            pair.client().writeAndFlush(Unpooled.wrappedBuffer(request));
            pair.forward(Side.CLIENT);
            pair.client().pipeline().firstContext().close(); // below the SslHandler: no close_notify
            endInput(pair.server(), end);

            assertThat(app.event.isMessageCut()).isTrue();
            FullHttpRequest received = app.single(FullHttpRequest.class);
            assertThat(received.decoderResult().cause()).isInstanceOf(TlsTruncationException.class)
                    .hasMessage("the TLS stream ended without the peer's close_notify (TRUNCATED) inside an HTTP "
                            + "request body, after " + SENT + " bytes of content" + framing.described());
            assertThat(received.content().readableBytes()).isEqualTo(SENT);
        } finally {
            app.release();
        }
    }

    // ---- placement

    @Test
    void itRefusesAPipelineWhereItCannotSeeMessagesInProgress() {
        assertRefused(p -> { }, "needs a GracefulTlsCloseHandler before it");
        assertRefused(p -> p.addLast(new GracefulTlsCloseHandler()),
                "must come after an HTTP codec (HttpClientCodec, HttpServerCodec, or an HttpObjectDecoder)");
        assertRefused(p -> p.addLast(new HttpClientCodec(), new GracefulTlsCloseHandler()),
                "needs a GracefulTlsCloseHandler before the HTTP codec");
        assertRefused(p -> p.addLast(new GracefulTlsCloseHandler(), new HttpClientCodec(),
                new HttpObjectAggregator(1024)), "must come before the aggregator");
    }

    private static void assertRefused(Consumer<ChannelPipeline> before, String message) {
        try (TlsPair pair = TlsPair.builder(SslProvider.JDK, "TLSv1.3").client(before).build()) {
            HttpTlsTruncationHandler handler = new HttpTlsTruncationHandler();
            EmbeddedChannel client = pair.client();
            assertThatExceptionOfType(ChannelPipelineException.class)
                    .isThrownBy(() -> {
                        client.pipeline().addLast(handler); // handlerAdded's exception goes to exceptionCaught
                        client.checkException();
                    })
                    .havingCause().isInstanceOf(IllegalStateException.class)
                    .withMessageContaining(message).withMessageContaining("HttpTlsTruncationHandler");
        }
    }

    @Test
    void oneInstanceServesOneChannel() {
        HttpTlsTruncationHandler handler = new HttpTlsTruncationHandler();
        try (TlsPair first = pairWith(handler); TlsPair second = TlsPair.builder(SslProvider.JDK, "TLSv1.3")
                .client(p -> p.addLast(new GracefulTlsCloseHandler(), new HttpClientCodec())).build()) {
            assertThatExceptionOfType(ChannelPipelineException.class)
                    .isThrownBy(() -> second.client().pipeline().addLast(handler))
                    .withMessageContaining("is not a @Sharable handler");
        }
    }

    private static TlsPair pairWith(ChannelHandler handler) {
        return TlsPair.builder(SslProvider.JDK, "TLSv1.3")
                .client(p -> p.addLast(new GracefulTlsCloseHandler(), new HttpClientCodec(), handler)).build();
    }

    // ---- helpers

    /** A client with HttpClientCodec, the companion if asked, an aggregator if asked; the server writes raw bytes. */
    private static final class Client implements AutoCloseable {
        final App app = new App();
        final TlsPair pair;

        Client(SslProvider provider, String protocol, boolean companion, boolean aggregate) {
            pair = TlsPair.builder(provider, protocol).halfClosure(true)
                    .client(p -> {
                        p.addLast(new GracefulTlsCloseHandler(), new HttpClientCodec());
                        if (companion) {
                            p.addLast(new HttpTlsTruncationHandler());
                        }
                        if (aggregate) {
                            p.addLast(new HttpObjectAggregator(1 << 20));
                        }
                        p.addLast(app);
                    })
                    .server(p -> p.addLast(new ChannelInboundHandlerAdapter()))
                    .build();
            pair.handshake();
            pair.client().writeAndFlush(new io.netty.handler.codec.http.DefaultFullHttpRequest(
                    io.netty.handler.codec.http.HttpVersion.HTTP_1_1, io.netty.handler.codec.http.HttpMethod.GET,
                    "/"));
            pair.forward(Side.CLIENT);
            pair.server().runPendingTasks();
        }

        void serverSends(byte[] bytes) {
            pair.server().writeAndFlush(Unpooled.wrappedBuffer(bytes));
            pair.forward(Side.SERVER);
            pair.client().runPendingTasks();
        }

        void serverDropsTcp(End end) {
            pair.server().pipeline().firstContext().close(); // below the SslHandler: no close_notify
            endInput(pair.client(), end);
        }

        @Override
        public void close() {
            try {
                pair.close();
            } finally {
                app.release();
            }
        }
    }

    private static void endInput(EmbeddedChannel ch, End end) {
        if (end == End.FIN) {
            ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        } else {
            ch.pipeline().firstContext().close();
        }
        ch.runPendingTasks();
    }

    /** The application: keeps every HTTP object (retained until {@link #release()}) and the TLS close event. */
    private static final class App extends ChannelInboundHandlerAdapter {
        final List<HttpObject> objects = new ArrayList<>();
        final List<Throwable> exceptions = new ArrayList<>();
        TlsCloseEvent event;
        private int objectsBeforeEvent = -1;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            objects.add((HttpObject) msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                assertThat(event).as("one TlsCloseEvent").isNull();
                event = (TlsCloseEvent) evt;
                objectsBeforeEvent = objects.size();
            }
            ReferenceCountUtil.release(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            exceptions.add(cause);
        }

        boolean eventBeforeMessages() {
            return objectsBeforeEvent == 0;
        }

        <T> T single(Class<T> type) {
            assertThat(objects).as("objects read").hasSize(1);
            return type.cast(objects.get(0));
        }

        void release() {
            objects.forEach(ReferenceCountUtil::release);
            objects.clear();
        }
    }

    private static byte[] payload(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) ('a' + i % 26);
        }
        return b;
    }

    private static byte[] slice(byte[] b, int n) {
        return slice(b, 0, n);
    }

    private static byte[] slice(byte[] b, int from, int to) {
        byte[] s = new byte[to - from];
        System.arraycopy(b, from, s, 0, s.length);
        return s;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = new byte[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
