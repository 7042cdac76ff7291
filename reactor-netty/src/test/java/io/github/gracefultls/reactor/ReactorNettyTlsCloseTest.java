package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.netty.channel.Channel;
import io.netty.channel.ChannelPipeline;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.netty.Connection;
import reactor.netty.DisposableServer;
import reactor.netty.NettyPipeline;
import reactor.netty.http.Http2SslContextSpec;
import reactor.netty.http.HttpProtocol;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;
import reactor.netty.tcp.TcpClient;
import reactor.netty.tcp.TcpServer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatNullPointerException;

/**
 * The API of {@link ReactorNettyTlsClose}: {@code TcpServer} and {@code TcpClient}, plaintext channels left alone, the
 * {@link ReactorNettyTlsClose#closures() Flux} of closures, {@link ReactorNettyTlsClose#closeOf(Connection)}, and
 * listeners that throw.
 */
class ReactorNettyTlsCloseTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    private final List<Runnable> cleanup = new ArrayList<>();

    @AfterEach
    void tearDown() {
        for (int i = cleanup.size() - 1; i >= 0; i--) {
            cleanup.get(i).run();
        }
    }

    private static GracefulTlsCloseHandler handler() {
        return GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(WAIT).build();
    }

    private static TlsClosure next(BlockingQueue<TlsClosure> closures) throws InterruptedException {
        TlsClosure c = closures.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(c).as("a closure within " + WAIT).isNotNull();
        return c;
    }

    /** TCP: an echo server and a client, each wired; the client's dispose is a clean SHUT_RDWR both ways. */
    @Test
    void tcpServerAndClientAreWiredAndReportEachClosure() throws Exception {
        BlockingQueue<TlsClosure> server = new LinkedBlockingQueue<>();
        BlockingQueue<TlsClosure> client = new LinkedBlockingQueue<>();
        DisposableServer bound = ReactorNettyTlsClose.builder().handler(ReactorNettyTlsCloseTest::handler)
                .onClose(server::add).build()
                .apply(TcpServer.create()
                        .host("127.0.0.1")
                        .port(0)
                        .secure(spec -> spec.sslContext(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3))))
                .handle((in, out) -> out.send(in.receive().retain()))
                .bindNow(WAIT);
        cleanup.add(() -> bound.disposeNow(WAIT));

        Connection connection = ReactorNettyTlsClose.builder().handler(ReactorNettyTlsCloseTest::handler)
                .onClose(client::add).build()
                .apply(TcpClient.create()
                        .host("127.0.0.1")
                        .port(bound.port())
                        .secure(spec -> spec.sslContext(Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3))))
                .connectNow(WAIT);
        // Read now: a disposed Connection gives a stand-in channel.
        Channel channel = connection.channel();
        List<String> names = channel.pipeline().names();
        assertThat(names.get(names.indexOf(NettyPipeline.SslHandler) + 1)).as("%s", names)
                .isEqualTo(ReactorNettyTlsClose.HANDLER_NAME);
        assertThat(names).as("no HTTP codec, no HTTP verdict").doesNotContain(ReactorNettyTlsClose.HTTP_HANDLER_NAME);
        Mono<TlsCloseEvent> closeOf = ReactorNettyTlsClose.closeOf(connection);

        String echoed = connection.outbound().sendString(Mono.just("ping")).then()
                .thenMany(connection.inbound().receive().asString()).next().block(WAIT);
        assertThat(echoed).isEqualTo("ping");
        connection.dispose();

        TlsClosure c = next(client);
        assertThat(c.channel()).isSameAs(channel);
        assertThat(c.event().status()).as("%s", c).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        assertThat(c.event().initiator()).as("%s", c).isEqualTo(TlsCloseInitiator.LOCAL);
        assertThat(closeOf.block(WAIT)).as("closeOf(connection)").isSameAs(c.event());
        TlsClosure s = next(server);
        assertThat(s.event().status()).as("%s", s).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        assertThat(s.event().initiator()).as("%s", s).isEqualTo(TlsCloseInitiator.PEER);
        assertThat(s.remoteAddress()).isEqualTo(channel.localAddress());
    }

    /** Without {@code secure(...)}: no handler, no HTTP verdict, no closure, and closeOf is empty. */
    @Test
    void plaintextChannelsAreLeftAlone() {
        AtomicInteger closures = new AtomicInteger();
        ReactorNettyTlsClose module = ReactorNettyTlsClose.builder().onClose(c -> closures.incrementAndGet()).build();
        List<ChannelPipeline> pipelines = new CopyOnWriteArrayList<>();
        DisposableServer server = module.apply(HttpServer.create().host("127.0.0.1").port(0))
                .doOnChannelInit((observer, ch, remote) -> pipelines.add(ch.pipeline()))
                .handle((req, res) -> res.sendString(Mono.just("plain")))
                .bindNow(WAIT);
        cleanup.add(() -> server.disposeNow(WAIT));
        CompletableFuture<Connection> clientConnection = new CompletableFuture<>();
        HttpClient client = module.apply(HttpClient.create(ConnectionProvider.newConnection())
                        .host("127.0.0.1").port(server.port()))
                .doOnConnected(clientConnection::complete);

        assertThat(client.get().uri("/").responseContent().aggregate().asString().block(WAIT)).isEqualTo("plain");

        assertThat(pipelines).hasSize(1);
        assertThat(pipelines.get(0).names()).doesNotContain(ReactorNettyTlsClose.HANDLER_NAME,
                ReactorNettyTlsClose.HTTP_HANDLER_NAME);
        assertThat(ReactorNettyTlsClose.closeOf(clientConnection.join()).blockOptional(WAIT)).isEmpty();
        assertThat(closures).hasValue(0);
    }

    /**
     * {@link ReactorNettyTlsClose#closures()}: a hot Flux of every wired connection's closure, to each subscriber
     * present; a listener that throws does not keep the closure from the next listener or the Flux.
     */
    @Test
    void closuresFluxAndListenersSeeEveryClosure() throws Exception {
        BlockingQueue<TlsClosure> listened = new LinkedBlockingQueue<>();
        ReactorNettyTlsClose module = ReactorNettyTlsClose.builder()
                .handler(ReactorNettyTlsCloseTest::handler)
                .onClose(c -> {
                    throw new IllegalStateException("a listener that throws (expected in this test)");
                })
                .onClose(listened::add)
                .build();
        BlockingQueue<TlsClosure> flux = new LinkedBlockingQueue<>();
        Disposable subscription = module.closures().subscribe(flux::add);
        cleanup.add(subscription::dispose);
        DisposableServer server = module.apply(HttpServer.create()
                        .host("127.0.0.1")
                        .port(0)
                        .secure(spec -> spec.sslContext(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3))))
                .handle((req, res) -> res.sendString(Mono.just("hello")))
                .bindNow(WAIT);
        cleanup.add(() -> server.disposeNow(WAIT));
        HttpClient client = module.apply(HttpClient.create(ConnectionProvider.newConnection())
                .host("127.0.0.1")
                .port(server.port())
                .secure(spec -> spec.sslContext(Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3))));

        for (int i = 0; i < 2; i++) {
            assertThat(client.get().uri("/").responseContent().aggregate().asString().block(WAIT))
                    .isEqualTo("hello");
        }

        // Two connections, each closed by the client after its response: four closures, two on each side.
        List<TlsClosure> fromListener = new ArrayList<>();
        List<TlsClosure> fromFlux = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            fromListener.add(next(listened));
            fromFlux.add(next(flux));
        }
        assertThat(fromFlux).containsExactlyInAnyOrderElementsOf(fromListener);
        assertThat(fromFlux).extracting(c -> c.event().initiator())
                .containsExactlyInAnyOrder(TlsCloseInitiator.LOCAL, TlsCloseInitiator.LOCAL, TlsCloseInitiator.PEER,
                        TlsCloseInitiator.PEER);
        assertThat(fromFlux).allSatisfy(c -> assertThat(c.event().isClean()).as("%s", c).isTrue());
        assertThat(fromFlux).extracting(TlsClosure::channel).extracting(Channel::id).doesNotHaveDuplicates();
    }

    /**
     * HTTP/2 over TLS (ALPN): Reactor Netty adds the HTTP codec after the handshake, so there is no HTTP verdict, but
     * the handler is in place and the closure is handled and reported as on HTTP/1.1.
     */
    @Test
    void http2OverAlpnIsWiredWithoutTheHttpVerdict() throws Exception {
        BlockingQueue<TlsClosure> closures = new LinkedBlockingQueue<>();
        ReactorNettyTlsClose module = ReactorNettyTlsClose.builder().handler(ReactorNettyTlsCloseTest::handler)
                .onClose(closures::add).build();
        List<ChannelPipeline> serverPipelines = new CopyOnWriteArrayList<>();
        List<Channel> clientChannels = new CopyOnWriteArrayList<>();
        DisposableServer server = module.apply(HttpServer.create()
                        .host("127.0.0.1")
                        .port(0)
                        .protocol(HttpProtocol.H2, HttpProtocol.HTTP11)
                        .secure(spec -> spec.sslContext(Http2SslContextSpec.forServer(
                                TestCertificates.serverKey(), TestCertificates.serverCertificateChain()))))
                .doOnChannelInit((observer, ch, remote) -> serverPipelines.add(ch.pipeline()))
                .handle((req, res) -> res.sendString(Mono.just(req.protocol())))
                .bindNow(WAIT);
        cleanup.add(() -> server.disposeNow(WAIT));
        HttpClient client = module.apply(HttpClient.create(ConnectionProvider.newConnection())
                .host("127.0.0.1")
                .port(server.port())
                .protocol(HttpProtocol.H2)
                .secure(spec -> spec.sslContext(Http2SslContextSpec.forClient()
                        .configure(b -> b.trustManager(TestCertificates.caCertificate())))))
                .doOnChannelInit((observer, ch, remote) -> clientChannels.add(ch));

        assertThat(client.get().uri("/").responseContent().aggregate().asString().block(WAIT)).isEqualTo("HTTP/2.0");
        // Reactor Netty keeps an HTTP/2 connection open after the response, even without a pool: close it.
        assertThat(clientChannels).hasSize(1);
        clientChannels.get(0).close();

        assertThat(serverPipelines).hasSize(1);
        assertThat(serverPipelines.get(0).names()).contains(ReactorNettyTlsClose.HANDLER_NAME)
                .doesNotContain(ReactorNettyTlsClose.HTTP_HANDLER_NAME);
        List<TlsClosure> both = List.of(next(closures), next(closures));
        assertThat(both).allSatisfy(c -> assertThat(c.event().isClean()).as("%s", c).isTrue());
        assertThat(both).extracting(c -> c.event().initiator())
                .containsExactlyInAnyOrder(TlsCloseInitiator.LOCAL, TlsCloseInitiator.PEER);
    }

    @Test
    void nullArgumentsAreRejectedByName() {
        assertThatNullPointerException().isThrownBy(() -> ReactorNettyTlsClose.builder().handler(null))
                .withMessage("handlers");
        assertThatNullPointerException().isThrownBy(() -> ReactorNettyTlsClose.builder().onClose(null))
                .withMessage("listener");
        assertThatNullPointerException().isThrownBy(() -> ReactorNettyTlsClose.create().apply((HttpClient) null))
                .withMessage("client");
        assertThatNullPointerException().isThrownBy(() -> ReactorNettyTlsClose.closeOf(null))
                .withMessage("connection");
    }
}
