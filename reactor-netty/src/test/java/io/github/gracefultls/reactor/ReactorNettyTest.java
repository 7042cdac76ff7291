package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.Tls;
import io.netty.channel.Channel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.GlobalEventExecutor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import reactor.core.publisher.Mono;
import reactor.netty.Connection;
import reactor.netty.ConnectionObserver;
import reactor.netty.DisposableServer;
import reactor.netty.NettyPipeline;
import reactor.netty.channel.ChannelOperations;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;
import reactor.netty.resources.LoopResources;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link GracefulTlsCloseHandler} in Reactor Netty 1.3 ({@code HttpServer}, {@code HttpClient}), wired with
 * {@link ReactorNettyTlsClose#apply}: which of Reactor Netty's close paths go through the handler (all
 * that call {@code channel.close()} or {@code ctx.close()} from a handler after ours) and which bypass it (an event
 * loop shut down under open connections closes them through {@code Channel.Unsafe}).
 */
class ReactorNettyTest {

    /** Bound on every wait here, longer than {@link #DEADLINE}: far from any stall of a loaded machine. */
    private static final Duration WAIT = Duration.ofSeconds(45);
    /** Every deadline of both sides' handlers: each side answers the other, however loaded the machine. */
    private static final Duration DEADLINE = Duration.ofSeconds(30);
    /** How long "nothing happens" is watched for. */
    private static final Duration QUIET = Duration.ofMillis(500);

    private final BlockingQueue<TlsCloseEvent> serverEvents = new LinkedBlockingQueue<>();
    private final BlockingQueue<TlsCloseEvent> clientEvents = new LinkedBlockingQueue<>();
    private final Set<Channel> serverChannels = ConcurrentHashMap.newKeySet();
    private final Set<Channel> clientChannels = ConcurrentHashMap.newKeySet();
    /** Per server channel: completed when Reactor Netty ends its (first) request, see {@link #awaitRequestEnded}. */
    private final Map<Channel, CompletableFuture<Void>> serverRequestsEnded = new ConcurrentHashMap<>();
    private final List<Runnable> cleanup = new ArrayList<>();

    @AfterEach
    void tearDown() {
        for (int i = cleanup.size() - 1; i >= 0; i--) {
            cleanup.get(i).run();
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Fixtures
    // ---------------------------------------------------------------------------------------------------------

    private HttpServer server(SslContext serverContext) {
        return server(serverContext, ReactorNettyTest::handler);
    }

    private HttpServer server(SslContext serverContext, Supplier<GracefulTlsCloseHandler> handlers) {
        return module(handlers, serverEvents).apply(HttpServer.create()
                .host("127.0.0.1")
                .port(0)
                .secure(spec -> spec.sslContext(serverContext)))
                .doOnChannelInit((observer, ch, remote) -> serverChannels.add(ch))
                .childObserve((connection, state) -> {
                    // ChannelOperations.terminate(): the operations are detached, then DISCONNECTING is signalled.
                    if (state == ConnectionObserver.State.DISCONNECTING) {
                        requestEnded(connection.channel()).complete(null);
                    }
                })
                .route(routes -> routes
                        .get("/hello", (req, res) -> res.sendString(Mono.just("hello")))
                        .get("/bye", (req, res) -> res.keepAlive(false).sendString(Mono.just("bye"))));
    }

    private static ReactorNettyTlsClose module(Supplier<GracefulTlsCloseHandler> handlers,
                                               BlockingQueue<TlsCloseEvent> events) {
        return ReactorNettyTlsClose.builder().handler(handlers).onClose(c -> events.add(c.event())).build();
    }

    private static GracefulTlsCloseHandler handler() {
        return GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(DEADLINE).closeNotifyFlushTimeout(DEADLINE)
                .build();
    }

    private DisposableServer bind(HttpServer server) {
        DisposableServer s = server.bindNow(WAIT);
        cleanup.add(() -> s.disposeNow(WAIT));
        return s;
    }

    private HttpClient client(ConnectionProvider provider, DisposableServer server, SslContext clientContext) {
        return module(ReactorNettyTest::handler, clientEvents).apply(HttpClient.create(provider)
                .host("127.0.0.1")
                .port(server.port())
                .secure(spec -> spec.sslContext(clientContext)))
                .doOnChannelInit((observer, ch, remote) -> clientChannels.add(ch));
    }

    private ConnectionProvider pool(String name) {
        ConnectionProvider provider = ConnectionProvider.builder(name).maxConnections(1).build();
        cleanup.add(() -> provider.disposeLater().block(WAIT));
        return provider;
    }

    private static String get(HttpClient client, String path) {
        return client.get().uri(path).responseContent().aggregate().asString().block(WAIT);
    }

    private static TlsCloseEvent next(BlockingQueue<TlsCloseEvent> events) throws InterruptedException {
        TlsCloseEvent e = events.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(e).as("a TlsCloseEvent within " + WAIT).isNotNull();
        return e;
    }

    private static void assertNoEvent(BlockingQueue<TlsCloseEvent> events) throws InterruptedException {
        assertThat(events.poll(QUIET.toMillis(), TimeUnit.MILLISECONDS)).as("no TLS closure").isNull();
    }

    private static void assertClean(TlsCloseEvent e, TlsCloseInitiator initiator) {
        assertThat(e.status()).as("%s", e).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        assertThat(e.initiator()).as("%s", e).isEqualTo(initiator);
        assertThat(e.cause()).as("%s", e).isNull();
    }

    private static Channel only(Set<Channel> channels) {
        assertThat(channels).hasSize(1);
        return channels.iterator().next();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Wiring
    // ---------------------------------------------------------------------------------------------------------

    @Test
    void handlerSitsRightAfterReactorNettysSslHandlerOnBothSides() {
        DisposableServer server = bind(server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3)));
        HttpClient client = client(pool("wiring"), server, Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3));

        assertThat(get(client, "/hello")).isEqualTo("hello");

        for (Channel ch : List.of(only(clientChannels), only(serverChannels))) {
            List<String> names = ch.pipeline().names();
            int ssl = names.indexOf(NettyPipeline.SslHandler);
            assertThat(ssl).as("%s", names).isNotNegative();
            assertThat(names.get(ssl + 1)).as("%s", names).isEqualTo(ReactorNettyTlsClose.HANDLER_NAME);
            int codec = names.indexOf(NettyPipeline.HttpCodec);
            assertThat(codec).as("%s", names).isGreaterThan(ssl + 1);
            assertThat(names.get(codec + 1)).as("%s", names).isEqualTo(ReactorNettyTlsClose.HTTP_HANDLER_NAME);
            assertThat(names.indexOf(NettyPipeline.ReactiveBridge)).as("%s", names).isGreaterThan(codec + 1);
        }
        List<String> serverNames = only(serverChannels).pipeline().names();
        assertThat(serverNames.get(serverNames.indexOf(ReactorNettyTlsClose.HTTP_HANDLER_NAME) + 1))
                .as("%s", serverNames).isEqualTo(ReactorNettyTlsClose.HTTP_SERVER_ERROR_NAME);
    }

    /**
     * Why {@code doOnChannelInit} and not {@code doOnConnected}: on a pooled connection {@code doOnConnected} runs
     * for every request, and by then the handshake is over, so the handler would be added once per request (a
     * duplicate name) and too late to follow the record framing from the start.
     */
    @Test
    void doOnConnectedRunsForEveryRequestOnAPooledConnection() {
        DisposableServer server = bind(server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3)));
        List<Boolean> handshakeDoneAtConnected = new CopyOnWriteArrayList<>();
        HttpClient client = client(pool("connected"), server, Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3))
                .doOnConnected(connection -> handshakeDoneAtConnected.add(connection.channel().pipeline()
                        .get(SslHandler.class).handshakeFuture().isSuccess()));

        assertThat(get(client, "/hello")).isEqualTo("hello");
        assertThat(get(client, "/hello")).isEqualTo("hello");

        assertThat(clientChannels).hasSize(1);
        assertThat(handshakeDoneAtConnected).containsExactly(true, true);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Reactor Netty's close paths that go through the handler
    // ---------------------------------------------------------------------------------------------------------

    /**
     * A kept-alive connection released to the pool is not closed, and the handler does nothing; disposing the
     * pool closes it with {@code channel.close()}: SHUT_RDWR, clean on both sides.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void pooledConnectionStaysOpenAndPoolDisposalClosesItGracefully(SslProvider provider, String protocol)
            throws InterruptedException {
        DisposableServer server = bind(server(Tls.serverContext(provider, protocol)));
        ConnectionProvider pool = ConnectionProvider.builder("pooled").maxConnections(1).build();
        HttpClient client = client(pool, server, Tls.clientContext(provider, protocol));

        assertThat(get(client, "/hello")).isEqualTo("hello");
        assertThat(get(client, "/hello")).isEqualTo("hello");
        assertThat(get(client, "/hello")).isEqualTo("hello");
        Channel channel = only(clientChannels);
        assertThat(channel.isActive()).isTrue();
        assertNoEvent(clientEvents);
        assertThat(serverEvents).isEmpty();

        pool.disposeLater().block(WAIT);

        TlsCloseEvent client1 = next(clientEvents);
        assertClean(client1, TlsCloseInitiator.LOCAL);
        assertThat(client1.mode()).isEqualTo(TlsCloseMode.SHUT_RDWR);
        assertClean(next(serverEvents), TlsCloseInitiator.PEER);
        assertThat(channel.closeFuture().awaitUninterruptibly(WAIT.toMillis())).isTrue();
    }

    /** Without a pool, Reactor Netty closes the connection after the response with {@code channel.close()}. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void newConnectionPerRequestIsClosedGracefullyByTheClient(SslProvider provider, String protocol)
            throws InterruptedException {
        DisposableServer server = bind(server(Tls.serverContext(provider, protocol)));
        HttpClient client = client(ConnectionProvider.newConnection(), server, Tls.clientContext(provider, protocol));

        assertThat(get(client, "/hello")).isEqualTo("hello");

        TlsCloseEvent e = next(clientEvents);
        assertClean(e, TlsCloseInitiator.LOCAL);
        assertThat(e.mode()).isEqualTo(TlsCloseMode.SHUT_RDWR);
        assertClean(next(serverEvents), TlsCloseInitiator.PEER);
    }

    /**
     * {@code Connection: close} from the server: Reactor Netty's server closes the connection after the response
     * ({@code channel.close()}). Reactor Netty's client closes too as soon as it has read that response, in the
     * same read as a rule, before it unwraps the server's close_notify: a simultaneous close, {@code LOCAL} on both
     * sides and clean on both. (Were the server's close_notify first, Reactor Netty's bridge would close on the
     * {@code SslCloseCompletionEvent} with {@code ctx.close()} after our handler, which joins the closure.)
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void connectionCloseResponseIsClosedGracefullyByTheServer(SslProvider provider, String protocol)
            throws InterruptedException {
        DisposableServer server = bind(server(Tls.serverContext(provider, protocol)));
        HttpClient client = client(pool("bye"), server, Tls.clientContext(provider, protocol));

        assertThat(get(client, "/bye")).isEqualTo("bye");

        TlsCloseEvent s = next(serverEvents);
        assertClean(s, TlsCloseInitiator.LOCAL);
        assertThat(s.mode()).isEqualTo(TlsCloseMode.SHUT_RDWR);
        TlsCloseEvent c = next(clientEvents);
        assertThat(c.status()).as("%s", c).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        // Measured: LOCAL (the client's close races the server's close_notify and wins); PEER is as correct.
        assertThat(c.initiator()).as("%s", c).isIn(TlsCloseInitiator.LOCAL, TlsCloseInitiator.PEER);
    }

    /** {@code Connection.dispose()} on an idle pooled connection is {@code channel().close()}. */
    @Test
    void connectionDisposeOnAnIdlePooledConnectionGoesThroughTheHandler() throws InterruptedException {
        DisposableServer server = bind(server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3)));
        HttpClient client = client(pool("dispose"), server, Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3));
        assertThat(get(client, "/hello")).isEqualTo("hello");
        Channel channel = only(clientChannels);

        Connection.from(channel).dispose();

        assertClean(next(clientEvents), TlsCloseInitiator.LOCAL);
        assertClean(next(serverEvents), TlsCloseInitiator.PEER);
        // The pool notices the closed channel and opens a new one for the next request.
        assertThat(get(client, "/hello")).isEqualTo("hello");
        assertThat(clientChannels).hasSize(2);
    }

    /**
     * {@code disposeNow()} with a {@code channelGroup}: idle connections are closed with {@code channel.close()},
     * so the server begins a graceful closure of each. "Idle" means the server has finished its last request:
     * checked here, since the client may have the whole response before the server's event loop has ended the
     * request (see the next test).
     */
    @Test
    void serverDisposeNowWithChannelGroupClosesIdleConnectionsGracefully() throws Exception {
        ChannelGroup group = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        DisposableServer server = server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3))
                .channelGroup(group)
                .bindNow(WAIT);
        HttpClient client = client(pool("group"), server, Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3));
        assertThat(get(client, "/hello")).isEqualTo("hello");
        awaitRequestEnded(only(serverChannels));

        server.disposeNow(WAIT);

        TlsCloseEvent s = next(serverEvents);
        assertClean(s, TlsCloseInitiator.LOCAL);
        assertThat(s.mode()).isEqualTo(TlsCloseMode.SHUT_RDWR);
        assertClean(next(clientEvents), TlsCloseInitiator.PEER);
    }

    /**
     * Right after a response, {@code disposeNow()} may find the request not yet ended on the server (measured: 4
     * runs in 40), waits for it to end, and then leaves the connection open. Closing the channel group after
     * {@code disposeNow()} closes what is left, gracefully: the shutdown to use.
     */
    @RepeatedTest(10)
    void serverShutdownWithDisposeNowThenChannelGroupCloseIsAlwaysGraceful() throws InterruptedException {
        ChannelGroup group = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        DisposableServer server = server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3))
                .channelGroup(group)
                .bindNow(WAIT);
        HttpClient client = client(pool("group-close"), server, Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3));
        assertThat(get(client, "/hello")).isEqualTo("hello");

        server.disposeNow(WAIT);
        assertThat(group.close().awaitUninterruptibly(WAIT.toMillis())).isTrue();

        assertClean(next(serverEvents), TlsCloseInitiator.LOCAL);
        assertClean(next(clientEvents), TlsCloseInitiator.PEER);
        assertThat(only(serverChannels).isActive()).isFalse();
    }

    private CompletableFuture<Void> requestEnded(Channel serverChannel) {
        return serverRequestsEnded.computeIfAbsent(serverChannel, ch -> new CompletableFuture<>());
    }

    /** Waits until the server has ended the channel's request (Reactor Netty detaches its operations then). */
    private void awaitRequestEnded(Channel channel) throws Exception {
        requestEnded(channel).get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(ChannelOperations.get(channel)).as("the server's request ended").isNull();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Close paths that do not reach the handler
    // ---------------------------------------------------------------------------------------------------------

    /** {@code disposeNow()} without a {@code channelGroup} closes only the listening socket. */
    @Test
    void serverDisposeNowWithoutChannelGroupLeavesConnectionsOpen() throws InterruptedException {
        DisposableServer server = server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3)).bindNow(WAIT);
        ConnectionProvider pool = pool("no-group");
        HttpClient client = client(pool, server, Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3));
        assertThat(get(client, "/hello")).isEqualTo("hello");

        server.disposeNow(WAIT);

        assertNoEvent(serverEvents);
        assertThat(only(serverChannels).isActive()).as("accepted connection still open").isTrue();
        assertThat(clientEvents).isEmpty();
        // Left to the client (or the server's event loop): here the pool closes it, gracefully.
        pool.disposeLater().block(WAIT);
        assertClean(next(clientEvents), TlsCloseInitiator.LOCAL);
        assertClean(next(serverEvents), TlsCloseInitiator.PEER);
    }

    /**
     * Disposing the server's {@link LoopResources} under open connections: the event loop closes its channels
     * through {@code Channel.Unsafe} (no pipeline {@code close()}), so no close_notify goes out. The server's
     * handler sees only the channel going inactive, the client a bare TCP end: both report {@code TRUNCATED}
     * (measured: the server's event says initiator {@code PEER} as well, since an inactive channel is all it is
     * told). Close the connections first (a {@code channelGroup} and {@code disposeNow()}) to avoid it.
     */
    @Test
    void eventLoopShutdownBypassesTheHandlerAndTruncates() throws InterruptedException {
        LoopResources loops = LoopResources.create("tls-close-server", 1, 1, true);
        cleanup.add(() -> loops.disposeLater(Duration.ZERO, WAIT).block(WAIT));
        DisposableServer server = server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3))
                .runOn(loops)
                .bindNow(WAIT);
        HttpClient client = client(pool("loop"), server, Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3));
        assertThat(get(client, "/hello")).isEqualTo("hello");
        server.disposeNow(WAIT);

        loops.disposeLater(Duration.ZERO, WAIT).block(WAIT);

        TlsCloseEvent s = next(serverEvents);
        assertThat(s.status()).as("%s", s).isEqualTo(TlsCloseStatus.TRUNCATED);
        TlsCloseEvent c = next(clientEvents);
        assertThat(c.status()).as("%s", c).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(c.initiator()).as("%s", c).isEqualTo(TlsCloseInitiator.PEER);
    }

    // ---------------------------------------------------------------------------------------------------------
    // A peer that cuts the connection
    // ---------------------------------------------------------------------------------------------------------

    /** A client that drops TCP without close_notify after its response: TRUNCATED on the Reactor Netty server. */
    @Test
    void clientDroppingTcpIsReportedAsTruncated() throws Exception {
        DisposableServer server = bind(server(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3)));

        assertThat(RawTlsPeers.getThenDropTcp(server.port(), "/hello", "hello")).contains("hello");

        TlsCloseEvent e = next(serverEvents);
        assertThat(e.status()).as("%s", e).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(e.initiator()).as("%s", e).isEqualTo(TlsCloseInitiator.PEER);
        assertThat(e.cause()).as("%s", e).isNotNull();
        // After a complete exchange: the HTTP verdict's marks say no message was cut.
        assertThat(e.isMessageCut()).as("%s", e).isFalse();
    }
}
