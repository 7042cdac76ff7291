package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link TlsCloseRelay} over real loopback sockets: a Netty TLS client, a TLS-terminating proxy (frontend: server
 * {@code SslHandler} and {@link GracefulTlsCloseHandler}; backend on the frontend's event loop, plain TCP or TLS) and
 * an upstream server (plain, or TLS with its own {@code GracefulTlsCloseHandler}). Every channel has
 * {@link ChannelOption#ALLOW_HALF_CLOSURE} on. The client and the frontend use the same provider and protocol, and so
 * does a TLS upstream and the backend.
 *
 * <p>What the far side sees is the point: a clean end stays clean and carries every byte; a truncation, a reset or a
 * timeout on one side never reaches the other side as a clean {@code close_notify} or FIN.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TlsCloseRelayTest {

    private static final long AWAIT_SECONDS = 5;
    private static final Duration AWAIT = Duration.ofSeconds(AWAIT_SECONDS);
    private static final int MIB = 1024 * 1024;

    /** How the proxy reaches the upstream. */
    enum Upstream {
        PLAIN, TLS
    }

    private EventLoopGroup group;
    /** The client, the proxy's channels and the upstream of the current test, closed after it. */
    private TlsSockets sockets;

    @BeforeAll
    @SuppressWarnings("deprecation") // NioEventLoopGroup: deprecated in Netty 4.2, the form 4.1 has too
    void startEventLoops() {
        group = new NioEventLoopGroup(2);
    }

    @AfterAll
    void stopEventLoops() throws Exception {
        assertThat(group.shutdownGracefully(0, AWAIT_SECONDS, SECONDS).await(2 * AWAIT_SECONDS, SECONDS)).isTrue();
    }

    @BeforeEach
    void openSockets() {
        sockets = new TlsSockets(group, NioSocketChannel.class, NioServerSocketChannel.class, AWAIT);
    }

    @AfterEach
    void closeSockets() throws Exception {
        sockets.close();
    }

    /** JDK/OPENSSL x TLSv1.2/TLSv1.3, as (SslProvider, protocol). */
    static Stream<Arguments> cells() {
        return Tls.providersAndProtocols();
    }

    static Stream<Arguments> cellsAndUpstreams() {
        return Tls.providersAndProtocols().flatMap(a -> Stream.of(Upstream.values())
                .map(u -> Arguments.of(a.get()[0], a.get()[1], u)));
    }

    /** The cells whose engine replies to the peer's close_notify at once (SPEC, "TLS engines differ"). */
    static Stream<Arguments> cellsWithoutTrueHalfClose() {
        return Tls.providersAndProtocols().filter(a -> !isTrueHalfClose((SslProvider) a.get()[0], (String) a.get()[1]));
    }

    private static boolean isTrueHalfClose(SslProvider provider, String protocol) {
        return provider == SslProvider.JDK && Tls.TLS_1_3.equals(protocol);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Clean ends
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1} {2} upstream")
    @MethodSource("cellsAndUpstreams")
    void upstreamEndAfterResponseEndsBothSidesCleanlyWithEveryByte(SslProvider provider, String protocol,
                                                                 Upstream kind) throws Exception {
        UpstreamServer upstream = startUpstream(kind, provider, protocol, GracefulTlsCloseHandler::new);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        byte[] request = payload(MIB, 1);
        byte[] response = payload(MIB, 2);

        client.channel.writeAndFlush(Unpooled.wrappedBuffer(request));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(request.length, AWAIT);
        respondAndEnd(kind, up, response); // plain: FIN; TLS: close_notify, then FIN

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.isClean()).as("%s", outcome).isTrue();
        assertEvent(outcome.frontendEvent(), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        if (kind == Upstream.TLS) {
            assertEvent(outcome.backendEvent(), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER);
            assertEvent(upstream.awaitEvent(), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        } else {
            assertThat(outcome.backendEvent()).isNull();
            upstream.rec.awaitEvent(ChannelInputShutdownEvent.class, AWAIT); // the backend's FIN
        }
        assertEvent(client.awaitEvent(AWAIT), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER);
        client.channel.closeFuture().await(AWAIT_SECONDS, SECONDS);
        assertSameBytes(client.rec.receivedBytes(), response, "response at the client");
        assertSameBytes(upstream.rec.receivedBytes(), request, "request at the upstream");
        assertThat(upstream.rec.exceptions()).isEmpty();
        assertThat(client.rec.exceptions()).isEmpty();
        assertBothClosed(proxy);
    }

    /** JDK TLSv1.3, the one engine that can still write after the peer's close_notify: a true half-close. */
    @ParameterizedTest(name = "JDK TLSv1.3 {0} upstream")
    @EnumSource(Upstream.class)
    void clientHalfCloseReachesUpstreamAndTheResponseStillFlows(Upstream kind) throws Exception {
        SslProvider provider = SslProvider.JDK;
        String protocol = Tls.TLS_1_3;
        UpstreamServer upstream = startUpstream(kind, provider, protocol,
                () -> GracefulTlsCloseHandler.builder().peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build());
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        byte[] request = payload(MIB, 3);
        byte[] response = payload(MIB, 4);

        client.channel.writeAndFlush(Unpooled.wrappedBuffer(request));
        Future<TlsCloseEvent> clientClose = client.handler.shutdownOutput(); // close_notify, then FIN

        Channel up = upstream.awaitAccepted();
        if (kind == Upstream.TLS) {
            assertEvent(upstream.awaitEvent(), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER);
        } else {
            upstream.rec.awaitEvent(ChannelInputShutdownEvent.class, AWAIT);
        }
        assertSameBytes(upstream.rec.receivedBytes(), request, "request at the upstream, before its end");
        respondAndEnd(kind, up, response);

        TlsCloseEvent clientEvent = clientClose.get(AWAIT_SECONDS, SECONDS);
        assertEvent(clientEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        assertThat(clientEvent.mode()).isEqualTo(TlsCloseMode.SHUT_WR);
        client.channel.closeFuture().await(AWAIT_SECONDS, SECONDS);
        assertSameBytes(client.rec.receivedBytes(), response, "response at the client, after its half-close");
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.isClean()).as("%s", outcome).isTrue();
        assertEvent(outcome.frontendEvent(), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER);
        if (kind == Upstream.TLS) {
            assertEvent(outcome.backendEvent(), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        }
        assertThat(upstream.rec.exceptions()).isEmpty();
        assertThat(client.rec.exceptions()).isEmpty();
        assertBothClosed(proxy);
    }

    /**
     * The documented engine limitation: JDK TLSv1.2 and OpenSSL answer the client's close_notify at once, so nothing
     * can reach the client after its half-close. The half-close still reaches the upstream with the whole request;
     * a response the upstream sends then cannot be delivered, and the upstream must learn that (a reset), not see a
     * clean end.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cellsWithoutTrueHalfClose")
    void clientHalfCloseWithAnEngineThatRepliesAtOnceEndsTheClientAndResetsALateResponse(SslProvider provider,
                                                                                         String protocol)
            throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        byte[] request = payload(64 * 1024, 5);

        client.channel.writeAndFlush(Unpooled.wrappedBuffer(request));
        TlsCloseEvent clientEvent = client.handler.shutdownOutput().get(AWAIT_SECONDS, SECONDS);
        // The frontend's engine replied by itself: the client's closure is over before the upstream said anything.
        assertEvent(clientEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL);
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitEvent(ChannelInputShutdownEvent.class, AWAIT);
        assertSameBytes(upstream.rec.receivedBytes(), request, "request at the upstream, before its FIN");

        up.writeAndFlush(Unpooled.wrappedBuffer(payload(64 * 1024, 6)));

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.CLEAN);
        assertThat(outcome.isClean()).as("a response was dropped: %s", outcome).isFalse();
        assertThat(outcome.backendEnd()).as("%s", outcome).isIn(TlsCloseRelay.End.ABORTED, TlsCloseRelay.End.FAILED);
        // Its input had ended (our FIN), so Netty reads no more: the reset shows on its next write.
        assertWritesFail(up, "the upstream, whose response could not be delivered");
        assertThat(client.rec.receivedBytes()).isEmpty();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Truncations and aborts
    // ------------------------------------------------------------------------------------------------------------

    /** A reset is no end of stream: the client must see a truncation, never the frontend's close_notify. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cells")
    void plainUpstreamResetMidResponseIsATruncationForTheClient(SslProvider provider, String protocol)
            throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 7)));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);
        byte[] part = payload(256 * 1024, 8);
        up.writeAndFlush(Unpooled.wrappedBuffer(part)).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(part.length, AWAIT); // the part is through, the reset comes "mid-response"

        reset(up);

        TlsCloseEvent clientEvent = client.awaitEvent(AWAIT);
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(clientEvent.status()).as("the client's view of an upstream reset: %s; relay %s", clientEvent,
                outcome).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(outcome.frontendEvent().status()).isEqualTo(TlsCloseStatus.FAILED);
        assertBothClosed(proxy);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cells")
    void tlsUpstreamDroppingTcpWithoutCloseNotifyIsATruncationForTheClient(SslProvider provider, String protocol)
            throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.TLS, provider, protocol, GracefulTlsCloseHandler::new);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 9)));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);
        byte[] part = payload(256 * 1024, 10);
        up.writeAndFlush(Unpooled.wrappedBuffer(part)).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(part.length, AWAIT);

        closeBelowTls(up); // FIN without close_notify: a truncation attack, as the backend sees it

        TlsCloseEvent clientEvent = client.awaitEvent(AWAIT);
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(clientEvent.status()).as("client %s; relay %s", clientEvent, outcome)
                .isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertEvent(outcome.backendEvent(), TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER);
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertSameBytes(client.rec.receivedBytes(), part, "what the client got before the truncation");
        assertBothClosed(proxy);
    }

    @ParameterizedTest(name = "{0} {1} {2} upstream")
    @MethodSource("cellsAndUpstreams")
    void clientTruncationAbortsTheUpstream(SslProvider provider, String protocol, Upstream kind) throws Exception {
        UpstreamServer upstream = startUpstream(kind, provider, protocol, GracefulTlsCloseHandler::new);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        byte[] part = payload(64 * 1024, 11);
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(part));
        upstream.awaitAccepted();
        upstream.rec.awaitBytes(part.length, AWAIT);

        closeBelowTls(client.channel); // FIN without close_notify

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertEvent(outcome.frontendEvent(), TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        if (kind == Upstream.TLS) {
            TlsCloseEvent upstreamEvent = upstream.awaitEvent();
            assertThat(upstreamEvent.status()).as("%s", upstreamEvent).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(upstreamEvent.cause()).as("%s", upstreamEvent).isInstanceOf(TlsTruncationException.class);
            assertThat(upstreamEvent.cause().getCause()).as("a reset, not a FIN: %s", upstreamEvent)
                    .isInstanceOf(IOException.class);
        } else {
            assertResetSeen(upstream.rec, "the upstream");
        }
        assertSameBytes(upstream.rec.receivedBytes(), part, "what the upstream got before the abort");
        assertBothClosed(proxy);
    }

    /** The frontend waits for the client's close_notify at most halfCloseTimeout; then both sides are aborted. */
    @Test
    void frontendHalfCloseTimeoutAbortsTheUpstream() throws Exception {
        SslProvider provider = SslProvider.JDK;
        String protocol = Tls.TLS_1_3; // its engine does not answer close_notify by itself
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream,
                () -> GracefulTlsCloseHandler.builder().halfCloseTimeout(Duration.ofMillis(200)).build());
        // A client that reads the response and the close_notify, but never answers nor closes.
        Client client = connect(provider, protocol, proxy,
                GracefulTlsCloseHandler.builder().peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 12)));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);
        respondAndEnd(Upstream.PLAIN, up, payload(1024, 13)); // done sending, and still listens

        assertEvent(client.awaitEvent(AWAIT), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER);
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TIMED_OUT);
        assertThat(outcome.frontendEvent().status()).isEqualTo(TlsCloseStatus.TIMED_OUT);
        assertThat(outcome.backendEnd()).as("its input had ended cleanly: %s", outcome)
                .isEqualTo(TlsCloseRelay.End.CLEAN);
        assertThat(outcome.isClean()).isFalse();
        assertResetSeen(upstream.rec, "the upstream, whose client never finished");
        assertBothClosed(proxy);
    }

    @Test
    void abortResetsBothSides() throws Exception {
        SslProvider provider = SslProvider.OPENSSL;
        String protocol = Tls.TLS_1_3;
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 14)));
        upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);

        proxy.relay().abort();

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(outcome.frontendEvent().status()).isEqualTo(TlsCloseStatus.FAILED);
        assertThat(client.awaitEvent(AWAIT).status()).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertResetSeen(upstream.rec, "the upstream");
        assertBothClosed(proxy);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Backpressure and arguments
    // ------------------------------------------------------------------------------------------------------------

    /**
     * A client that does not read stalls the upstream: the relay reads again only once a write is done, so neither
     * proxy channel buffers more than about one read. Then the client reads, and every byte arrives.
     */
    @Test
    void aClientThatDoesNotReadStallsTheUpstream() throws Exception {
        SslProvider provider = SslProvider.OPENSSL;
        String protocol = Tls.TLS_1_3;
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        client.channel.config().setAutoRead(false);
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(16, 15)));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(16, AWAIT);
        TlsCloseRelay relay = proxy.relay();
        assertThat(relay.frontend().config().isAutoRead()).isFalse();
        assertThat(relay.backend().config().isAutoRead()).isFalse();

        byte[] chunk = payload(64 * 1024, 16);
        Pump pump = new Pump(up, chunk, 256L * MIB);
        up.eventLoop().execute(pump::run);
        long written = pump.stalled.get(10, SECONDS);

        long frontendPending = onEventLoop(relay.frontend(),
                () -> relay.frontend().unsafe().outboundBuffer().totalPendingWriteBytes());
        long backendPending = onEventLoop(relay.backend(),
                () -> relay.backend().unsafe().outboundBuffer().totalPendingWriteBytes());
        assertThat(written).as("the upstream stalled before its limit").isLessThan(256L * MIB);
        assertThat(frontendPending).as("bytes queued on the frontend").isLessThanOrEqualTo(256 * 1024);
        assertThat(backendPending).as("bytes queued on the backend").isLessThanOrEqualTo(256 * 1024);

        respondAndEnd(Upstream.PLAIN, up, new byte[0]); // FIN after everything written
        client.channel.config().setAutoRead(true);

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.isClean()).as("%s", outcome).isTrue();
        client.rec.awaitInactive(AWAIT);
        byte[] received = client.rec.receivedBytes();
        assertThat((long) received.length).isEqualTo(written);
        MessageDigest expected = sha256();
        for (long n = 0; n < written; n += chunk.length) {
            expected.update(chunk);
        }
        assertThat(hex(sha256().digest(received))).isEqualTo(hex(expected.digest()));
    }

    @Test
    void linkChecksItsArguments() throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, SslProvider.JDK, Tls.TLS_1_3, null);
        Channel active = new Bootstrap()
                .group(group)
                .channel(NioSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInboundHandlerAdapter())
                .connect(upstream.address()).sync().channel();
        sockets.closeAfter(() -> closeBelowTls(active));
        List<String> handlers = active.pipeline().names();
        Channel halfClosureOff = newSocket(false);
        Channel inactive = newSocket(true);
        Channel sslOnly = newSocket(true);
        sslOnly.pipeline().addLast(Tls.serverContext(SslProvider.JDK, Tls.TLS_1_3).newHandler(sslOnly.alloc()));
        EmbeddedChannel embedded = new EmbeddedChannel();
        sockets.closeAfter(embedded::finishAndReleaseAll);

        assertThatThrownBy(() -> TlsCloseRelay.link(null, active)).isInstanceOf(NullPointerException.class)
                .hasMessageContaining("frontend");
        assertThatThrownBy(() -> TlsCloseRelay.link(active, null)).isInstanceOf(NullPointerException.class)
                .hasMessageContaining("backend");
        assertThatThrownBy(() -> TlsCloseRelay.link(active, active)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("same channel");
        assertThatThrownBy(() -> TlsCloseRelay.link(active, halfClosureOff))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("backend").hasMessageContaining("ALLOW_HALF_CLOSURE");
        assertThatThrownBy(() -> TlsCloseRelay.link(halfClosureOff, active))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("frontend").hasMessageContaining("ALLOW_HALF_CLOSURE");
        assertThatThrownBy(() -> TlsCloseRelay.link(sslOnly, active)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("frontend").hasMessageContaining("SslHandler")
                .hasMessageContaining("GracefulTlsCloseHandler");
        assertThatThrownBy(() -> TlsCloseRelay.link(embedded, active)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("frontend").hasMessageContaining("DuplexChannel");
        assertThatThrownBy(() -> TlsCloseRelay.link(active, inactive)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("backend").hasMessageContaining("not active");
        // A link() that failed changed nothing.
        assertThat(active.config().isAutoRead()).isTrue();
        assertThat(active.pipeline().names()).isEqualTo(handlers);
    }

    // ------------------------------------------------------------------------------------------------------------
    // The upstream, the proxy and the client
    // ------------------------------------------------------------------------------------------------------------

    /** An upstream server, plain or TLS, for one connection: records what it receives, and its user events. */
    private static final class UpstreamServer {
        final Upstream kind;
        final SslProvider provider;
        final String protocol;
        final Peer peer;
        final RecordingHandler rec;

        UpstreamServer(Upstream kind, SslProvider provider, String protocol, Peer peer) {
            this.kind = kind;
            this.provider = provider;
            this.protocol = protocol;
            this.peer = peer;
            this.rec = peer.rec;
        }

        SocketAddress address() {
            return peer.address();
        }

        Channel awaitAccepted() throws Exception {
            return peer.awaitAccepted();
        }

        TlsCloseEvent awaitEvent() throws Exception {
            return rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        }
    }

    private UpstreamServer startUpstream(Upstream kind, SslProvider provider, String protocol,
                                         Supplier<GracefulTlsCloseHandler> tlsHandler) throws Exception {
        boolean tls = kind == Upstream.TLS;
        Peer peer = sockets.listen(tls ? Tls.serverContext(provider, protocol) : null, tls ? tlsHandler.get() : null,
                RecordingHandler.swallowingExceptions(), null);
        return new UpstreamServer(kind, provider, protocol, peer);
    }

    /**
     * A TLS-terminating proxy for one connection, in the shape of Netty's HexDumpProxy: auto-read off, the backend
     * connected on the frontend's event loop once the frontend is active, then {@link TlsCloseRelay#link}.
     */
    private final class Proxy {
        final Channel server;
        final CompletableFuture<TlsCloseRelay> relay = new CompletableFuture<>();

        Proxy(SslProvider provider, String protocol, UpstreamServer upstream,
              Supplier<GracefulTlsCloseHandler> frontendHandler) throws Exception {
            ChannelFuture bind = new ServerBootstrap()
                    .group(group)
                    .channel(NioServerSocketChannel.class)
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childOption(ChannelOption.AUTO_READ, false)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(Tls.serverContext(provider, protocol).newHandler(ch.alloc()));
                            ch.pipeline().addLast(frontendHandler.get());
                            ch.pipeline().addLast(new Connector(upstream, relay));
                            sockets.closeAfter(() -> closeBelowTls(ch));
                        }
                    })
                    .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            server = bind.channel();
            sockets.closeAfter(() -> server.close().await(AWAIT_SECONDS, SECONDS));
            bind.get(AWAIT_SECONDS, SECONDS);
        }

        TlsCloseRelay relay() throws Exception {
            return relay.get(AWAIT_SECONDS, SECONDS);
        }

        TlsCloseRelay.Outcome awaitOutcome() throws Exception {
            return relay().closeFuture().get(AWAIT_SECONDS, SECONDS);
        }
    }

    /** Connects the backend when the frontend is active, and links the two. */
    private final class Connector extends ChannelInboundHandlerAdapter {
        private final UpstreamServer upstream;
        private final CompletableFuture<TlsCloseRelay> relay;

        Connector(UpstreamServer upstream, CompletableFuture<TlsCloseRelay> relay) {
            this.upstream = upstream;
            this.relay = relay;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            Channel frontend = ctx.channel();
            ChannelHandler backendHandler = upstream.kind == Upstream.PLAIN
                    ? new ChannelInboundHandlerAdapter()
                    : new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(Tls.clientContext(upstream.provider, upstream.protocol)
                                    .newHandler(ch.alloc()));
                            ch.pipeline().addLast(new GracefulTlsCloseHandler());
                        }
                    };
            new Bootstrap()
                    .group(frontend.eventLoop())
                    .channel(NioSocketChannel.class)
                    .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .option(ChannelOption.AUTO_READ, false)
                    .handler(backendHandler)
                    .connect(upstream.address())
                    .addListener((ChannelFuture f) -> {
                        if (!f.isSuccess()) {
                            relay.completeExceptionally(f.cause());
                            frontend.close();
                            return;
                        }
                        sockets.closeAfter(() -> closeBelowTls(f.channel()));
                        try {
                            TlsCloseRelay r = TlsCloseRelay.link(frontend, f.channel());
                            sockets.closeAfter(() -> {
                                if (!r.closeFuture().isDone()) {
                                    r.abort();
                                }
                            });
                            relay.complete(r);
                        } catch (Throwable t) {
                            relay.completeExceptionally(t);
                        }
                    });
            ctx.pipeline().remove(this);
        }
    }

    private Proxy startProxy(SslProvider provider, String protocol, UpstreamServer upstream,
                             Supplier<GracefulTlsCloseHandler> frontendHandler) throws Exception {
        return new Proxy(provider, protocol, upstream, frontendHandler);
    }

    private Client connect(SslProvider provider, String protocol, Proxy proxy, GracefulTlsCloseHandler handler)
            throws Exception {
        return sockets.connect(Tls.clientContext(provider, protocol), proxy.server.localAddress(), handler,
                RecordingHandler.swallowingExceptions());
    }

    /** Writes {@code chunk} while the channel is writable, up to {@code limit} bytes; reports where it stalled. */
    private static final class Pump {
        final Channel channel;
        final byte[] chunk;
        final long limit;
        final AtomicLong written = new AtomicLong();
        final CompletableFuture<Long> stalled = new CompletableFuture<>();

        Pump(Channel channel, byte[] chunk, long limit) {
            this.channel = channel;
            this.chunk = chunk;
            this.limit = limit;
        }

        /** On the channel's event loop: writes, then checks again on the next loop iteration. */
        void run() {
            while (channel.isWritable() && written.get() < limit) {
                channel.writeAndFlush(Unpooled.wrappedBuffer(chunk));
                written.addAndGet(chunk.length);
            }
            if (written.get() >= limit) {
                stalled.complete(written.get());
                return;
            }
            // Unwritable: stalled if it stays so for a while (nothing drains). Bounded by the caller's wait.
            long mark = channel.unsafe().outboundBuffer().totalPendingWriteBytes();
            channel.eventLoop().schedule(() -> {
                if (!channel.isWritable()
                        && channel.unsafe().outboundBuffer().totalPendingWriteBytes() == mark) {
                    stalled.complete(written.get());
                } else {
                    run();
                }
            }, 200, TimeUnit.MILLISECONDS);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    private Channel newSocket(boolean allowHalfClosure) throws Exception {
        NioSocketChannel ch = new NioSocketChannel();
        ch.config().setAllowHalfClosure(allowHalfClosure);
        group.next().register(ch).get(AWAIT_SECONDS, SECONDS);
        sockets.closeAfter(() -> ch.close().await(AWAIT_SECONDS, SECONDS));
        return ch;
    }

    /**
     * Writes {@code bytes}, then ends cleanly once they are written: a plain side with a FIN (a direct
     * {@code shutdownOutput()} would fail the writes still queued), a TLS side with close_notify, then FIN.
     */
    private static void respondAndEnd(Upstream kind, Channel ch, byte[] bytes) {
        ChannelFuture written = ch.writeAndFlush(Unpooled.wrappedBuffer(bytes));
        if (kind == Upstream.TLS) {
            GracefulTlsCloseHandler.shutdownOutput(ch); // flushes what was written first
        } else {
            written.addListener(f -> ((DuplexChannel) ch).shutdownOutput());
        }
    }

    /** Closes with a TCP reset: SO_LINGER 0, closed below any TLS handler. */
    private static void reset(Channel ch) throws Exception {
        onEventLoop(ch, () -> ch.config().setOption(ChannelOption.SO_LINGER, 0));
        closeBelowTls(ch);
    }

    /** Closes at the head of the pipeline, past every handler: no close_notify, no wait. */
    private static void closeBelowTls(Channel ch) throws InterruptedException {
        TlsSockets.closeBelowTls(ch, AWAIT);
    }

    private static <T> T onEventLoop(Channel ch, Callable<T> task) throws Exception {
        return TlsSockets.onEventLoop(ch, task, AWAIT);
    }

    /** A plain peer saw a reset: an IOException, before any end of stream (with half-closure a reset also ends it). */
    private static void assertResetSeen(RecordingHandler rec, String who) throws InterruptedException {
        rec.awaitCondition(r -> !r.exceptions().isEmpty() || r.isInactive(), AWAIT, "a reset at " + who);
        List<Object> timeline = rec.timeline();
        int reset = -1;
        int fin = -1;
        for (int i = 0; i < timeline.size(); i++) {
            Object o = timeline.get(i);
            if (reset < 0 && o instanceof IOException) {
                reset = i;
            }
            if (fin < 0 && o instanceof ChannelInputShutdownEvent) {
                fin = i;
            }
        }
        assertThat(reset).as("%s saw a reset (IOException); timeline %s", who, timeline).isNotNegative();
        if (fin >= 0) {
            assertThat(fin).as("%s saw the reset before any end of stream; timeline %s", who, timeline)
                    .isGreaterThan(reset);
        }
    }

    /** A peer whose input had ended sees a reset on its next writes: they fail. */
    private static void assertWritesFail(Channel ch, String who) throws Exception {
        for (int i = 0; i < 100; i++) {
            ChannelFuture f = ch.writeAndFlush(Unpooled.wrappedBuffer(new byte[1024]));
            assertThat(f.await(AWAIT_SECONDS, SECONDS)).isTrue();
            if (!f.isSuccess()) {
                assertThat(f.cause()).as("%s: write failure", who).isInstanceOf(IOException.class);
                return;
            }
        }
        throw new AssertionError(who + ": 100 KiB written after the reset, and no write failed");
    }

    private static void assertEvent(TlsCloseEvent event, TlsCloseStatus status, TlsCloseInitiator initiator) {
        assertThat(event).as("TlsCloseEvent").isNotNull();
        assertThat(event.status()).as("status of %s", event).isEqualTo(status);
        assertThat(event.initiator()).as("initiator of %s", event).isEqualTo(initiator);
    }

    private static void assertBothClosed(Proxy proxy) throws Exception {
        TlsCloseRelay relay = proxy.relay();
        assertThat(relay.frontend().closeFuture().await(AWAIT_SECONDS, SECONDS)).as("frontend closed").isTrue();
        assertThat(relay.backend().closeFuture().await(AWAIT_SECONDS, SECONDS)).as("backend closed").isTrue();
    }

    private static void assertSameBytes(byte[] actual, byte[] expected, String what) {
        assertThat(actual.length).as("length of the %s", what).isEqualTo(expected.length);
        assertThat(hex(sha256().digest(actual))).as("SHA-256 of the %s", what)
                .isEqualTo(hex(sha256().digest(expected)));
    }

    private static byte[] payload(int length, int seed) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) ((i * 31 + seed * 7) % 251);
        }
        return bytes;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    private static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }
}
