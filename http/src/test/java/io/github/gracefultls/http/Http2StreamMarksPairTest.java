package io.github.gracefultls.http;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2ChannelDuplexHandler;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2FrameStream;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatNullPointerException;

/**
 * {@link Http2StreamMarks} between real {@code SslHandler}s, with Netty's {@code Http2FrameCodec} on both sides: an end
 * of the TLS stream while the peer may still send on a stream is {@link MessageState#IN_MESSAGE}, and a cut message
 * when unclean; on an idle connection, after every stream is done, or after a {@code GOAWAY} closed the rest, it is
 * {@link MessageState#BETWEEN_MESSAGES}.
 */
class Http2StreamMarksPairTest {

    private static final byte[] PART = new byte[1000];

    // ---- the client's view

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void aResponseCutByTheServerIsACutMessageOnTheClientOnly(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            Http2FrameStream stream = h2.client.request(true);
            h2.pair.pump();
            Http2FrameStream atServer = h2.server.single(Http2HeadersFrame.class).stream();
            h2.server.respond(atServer, false, PART);
            h2.pair.pump();
            assertThat(h2.client.read).containsExactly("HEADERS 3", "DATA 3 1000");
            assertThat(stream.state()).isEqualTo(Http2Stream.State.HALF_CLOSED_LOCAL);

            h2.dropTcp(Side.SERVER, false);

            TlsCloseEvent client = h2.clientEvent();
            assertThat(client.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(client.messageState()).isEqualTo(MessageState.IN_MESSAGE);
            assertThat(client.isMessageCut()).isTrue();
            assertThat(client.toString()).contains(", in message");
            // The server had the whole request: its own end of the connection cut nothing it was receiving.
            TlsCloseEvent server = h2.serverEvent();
            assertThat(server.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(server.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
            assertThat(server.isMessageCut()).isFalse();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void aRequestAwaitingItsResponseIsInAMessageAlsoWithAFin(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            h2.client.request(true);
            h2.pair.pump();

            h2.dropTcp(Side.SERVER, true);

            assertThat(h2.clientEvent().isMessageCut()).as("%s", h2.clientEvent()).isTrue();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void anIdleConnectionEndsBetweenMessages(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            assertThat(h2.client.read).as("SETTINGS only").isEmpty();

            h2.dropTcp(Side.SERVER, false);

            assertBetweenMessages(h2.clientEvent());
            assertBetweenMessages(h2.serverEvent());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void anEndAfterEveryStreamIsDoneIsBetweenMessagesButNotWhileOneIsOpen(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            h2.client.request(true);
            h2.client.request(true);
            h2.pair.pump();
            List<Http2HeadersFrame> requests = h2.server.all(Http2HeadersFrame.class);
            assertThat(requests).hasSize(2);
            h2.server.respond(requests.get(0).stream(), true, PART);
            h2.pair.pump();
            assertThat(h2.client.read).containsExactly("HEADERS 3", "DATA 3 1000 END_STREAM");
            h2.server.respond(requests.get(1).stream(), true, PART);
            h2.pair.pump();
            assertThat(h2.client.read).containsExactly("HEADERS 3", "DATA 3 1000 END_STREAM",
                    "HEADERS 5", "DATA 5 1000 END_STREAM");

            h2.dropTcp(Side.SERVER, false);

            assertBetweenMessages(h2.clientEvent());
        }
    }

    /** The same two streams, one left open: the count seen when the first closes is the decremented one, 1. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void anEndWithOneOfTwoStreamsDoneIsInAMessage(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            h2.client.request(true);
            h2.client.request(true);
            h2.pair.pump();
            h2.server.respond(h2.server.all(Http2HeadersFrame.class).get(1).stream(), true, PART);
            h2.pair.pump();
            assertThat(h2.client.read).containsExactly("HEADERS 5", "DATA 5 1000 END_STREAM");

            h2.dropTcp(Side.SERVER, false);

            assertThat(h2.clientEvent().isMessageCut()).as("%s", h2.clientEvent()).isTrue();
        }
    }

    /**
     * The server answers stream 3 and sends {@code GOAWAY} (last stream 3) while the client's stream 5 is in flight:
     * the client closes stream 5 on the {@code GOAWAY}, stream 3 ends, and no stream is left.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void anEndAfterAGoAwayClosedTheRestIsBetweenMessages(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            h2.client.request(true);
            h2.pair.forward(Side.CLIENT);
            h2.pair.runPendingTasks();
            Http2FrameStream late = h2.client.request(true); // not forwarded before the GOAWAY
            Http2FrameStream first = h2.server.single(Http2HeadersFrame.class).stream();
            h2.server.ctx.writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR));
            h2.server.respond(first, true, PART);
            h2.pair.forward(Side.SERVER);
            h2.pair.runPendingTasks();
            assertThat(h2.client.read).containsExactly("GOAWAY 3", "HEADERS 3", "DATA 3 1000 END_STREAM");
            assertThat(late.state()).isEqualTo(Http2Stream.State.CLOSED);
            h2.pair.pump(); // the late stream reaches the server, which ignores it after its GOAWAY

            h2.dropTcp(Side.SERVER, false);

            assertBetweenMessages(h2.clientEvent());
        }
    }

    // ---- the server's view

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void aRequestBodyCutByTheClientIsACutMessageOnTheServer(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            Http2FrameStream stream = h2.client.request(false);
            h2.client.ctx.writeAndFlush(new DefaultHttp2DataFrame(Unpooled.wrappedBuffer(PART), false).stream(stream));
            h2.pair.pump();
            assertThat(h2.server.read).containsExactly("HEADERS 3", "DATA 3 1000");

            h2.dropTcp(Side.CLIENT, false);

            TlsCloseEvent server = h2.serverEvent();
            assertThat(server.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(server.isMessageCut()).as("%s", server).isTrue();
        }
    }

    /** A client that drops the connection while its response is being written cut nothing the server receives. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void aClientLeavingDuringItsResponseIsBetweenMessagesOnTheServer(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            h2.client.request(true);
            h2.pair.pump();
            h2.server.respond(h2.server.single(Http2HeadersFrame.class).stream(), false, PART);
            h2.pair.pump();

            h2.dropTcp(Side.CLIENT, false);

            assertThat(h2.serverEvent().status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertBetweenMessages(h2.serverEvent());
            assertThat(h2.clientEvent().isMessageCut()).isTrue();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void aCleanEndWithAnOpenStreamIsNotACut(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, false)) {
            h2.client.request(true);
            h2.pair.pump();

            h2.serverTls.bye(io.github.gracefultls.TlsCloseMode.SHUT_RDWR);
            h2.pair.pump();

            TlsCloseEvent client = h2.clientEvent();
            assertThat(client.isClean()).isTrue();
            assertThat(client.messageState()).isEqualTo(MessageState.IN_MESSAGE);
            assertThat(client.isMessageCut()).isFalse();
        }
    }

    // ---- attach

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void attachedWhileAStreamIsOpenItMarksItAtOnce(SslProvider provider, String protocol) {
        try (H2 h2 = new H2(provider, protocol, true)) {
            h2.client.request(true);
            h2.pair.pump();
            Http2StreamMarks.attach(h2.clientCodec, h2.clientTls);

            h2.dropTcp(Side.SERVER, false);

            assertThat(h2.clientEvent().isMessageCut()).isTrue();
        }
    }

    @Test
    void attachChecksItsArguments() {
        Http2FrameCodec codec = Http2FrameCodecBuilder.forClient().build();
        assertThatNullPointerException().isThrownBy(() -> Http2StreamMarks.attach(null, new GracefulTlsCloseHandler()))
                .withMessage("codec");
        assertThatNullPointerException().isThrownBy(() -> Http2StreamMarks.attach(codec, null))
                .withMessage("tlsClose");
    }

    // ---- helpers

    private static void assertBetweenMessages(TlsCloseEvent event) {
        assertThat(event.messageState()).as("%s", event).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(event.isMessageCut()).isFalse();
        assertThat(event.toString()).contains(", between messages");
    }

    /** An h2 client and server ({@code Http2FrameCodec} and a {@link Frames} each), marks attached unless told. */
    private static final class H2 implements AutoCloseable {
        final GracefulTlsCloseHandler clientTls = new GracefulTlsCloseHandler();
        final GracefulTlsCloseHandler serverTls = new GracefulTlsCloseHandler();
        final Http2FrameCodec clientCodec = Http2FrameCodecBuilder.forClient().build();
        final Http2FrameCodec serverCodec = Http2FrameCodecBuilder.forServer().build();
        final Frames client = new Frames();
        final Frames server = new Frames();
        final TlsPair pair;

        H2(SslProvider provider, String protocol, boolean attachLater) {
            pair = TlsPair.builder(provider, protocol).halfClosure(true)
                    .client(p -> p.addLast(clientTls, clientCodec, client))
                    .server(p -> p.addLast(serverTls, serverCodec, server))
                    .build();
            if (!attachLater) {
                Http2StreamMarks.attach(clientCodec, clientTls);
            }
            Http2StreamMarks.attach(serverCodec, serverTls);
            pair.handshake();
            assertThat(client.read).isEmpty();
            assertThat(server.read).isEmpty();
        }

        /** {@code side} closes its transport beneath its SslHandler (no close_notify); the peer sees an RST or FIN. */
        void dropTcp(Side side, boolean fin) {
            pair.channel(side).pipeline().firstContext().close();
            EmbeddedChannel peer = pair.channel(side.peer());
            if (fin) {
                peer.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
            } else {
                peer.pipeline().firstContext().close();
            }
            pair.runPendingTasks();
        }

        TlsCloseEvent clientEvent() {
            return event(clientTls);
        }

        TlsCloseEvent serverEvent() {
            return event(serverTls);
        }

        private static TlsCloseEvent event(GracefulTlsCloseHandler handler) {
            assertThat(handler.closeFuture().isSuccess()).as("the closure is over").isTrue();
            return handler.closeFuture().getNow();
        }

        @Override
        public void close() {
            try {
                pair.close();
            } finally {
                client.release();
                server.release();
            }
        }
    }

    /** Frames on the codec's channel: opens and answers streams, and records what it reads ("DATA 3 1000"). */
    private static final class Frames extends Http2ChannelDuplexHandler {
        final List<String> read = new ArrayList<>();
        final List<Object> frames = new ArrayList<>();
        ChannelHandlerContext ctx;

        @Override
        protected void handlerAdded0(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        Http2FrameStream request(boolean endStream) {
            Http2FrameStream stream = newStream();
            ctx.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().method("POST").path("/")
                    .scheme("https").authority("localhost"), endStream).stream(stream));
            return stream;
        }

        void respond(Http2FrameStream stream, boolean endStream, byte[] body) {
            ctx.write(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200")).stream(stream));
            ctx.writeAndFlush(new DefaultHttp2DataFrame(Unpooled.wrappedBuffer(body), endStream).stream(stream));
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof Http2HeadersFrame) {
                Http2HeadersFrame h = (Http2HeadersFrame) msg;
                read.add("HEADERS " + h.stream().id() + (h.isEndStream() ? " END_STREAM" : ""));
                frames.add(msg);
            } else if (msg instanceof Http2DataFrame) {
                Http2DataFrame d = (Http2DataFrame) msg;
                read.add("DATA " + d.stream().id() + " " + d.content().readableBytes()
                        + (d.isEndStream() ? " END_STREAM" : ""));
                frames.add(msg);
            } else if (msg instanceof Http2GoAwayFrame) {
                read.add("GOAWAY " + ((Http2GoAwayFrame) msg).lastStreamId());
                frames.add(msg);
            } else {
                ReferenceCountUtil.release(msg); // SETTINGS and their ACKs
            }
        }

        <T> T single(Class<T> type) {
            List<T> all = all(type);
            assertThat(all).hasSize(1);
            return all.get(0);
        }

        <T> List<T> all(Class<T> type) {
            List<T> all = new ArrayList<>();
            frames.stream().filter(type::isInstance).map(type::cast).forEach(all::add);
            return all;
        }

        void release() {
            frames.forEach(ReferenceCountUtil::release);
            frames.clear();
        }
    }
}
