package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.micrometer.TlsCloseMetrics;
import io.github.gracefultls.testing.Tls;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The micrometer module's {@link TlsCloseMetrics} on Reactor Netty, wired both ways docs/metrics.md shows: on the
 * server its shared handler, added by {@code doOnChannelInit} right after {@link GracefulTlsCloseHandler} (before
 * Reactor Netty's bridge, which swallows user events); on the client {@link TlsCloseMetrics#record} as the consumer
 * of each connection's outcome.
 */
class TlsCloseMetricsTest {

    /** Bound on every wait here, longer than {@link #DEADLINE}: far from any stall of a loaded machine. */
    private static final Duration WAIT = Duration.ofSeconds(45);
    /** Every deadline of both sides' handlers: each side answers the other, however loaded the machine. */
    private static final Duration DEADLINE = Duration.ofSeconds(30);

    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private DisposableServer server;

    @AfterEach
    void tearDown() {
        if (server != null) {
            server.disposeNow(WAIT);
        }
        registry.close();
    }

    @Test
    void countsClosuresPerStatusInitiatorAndMessageOnServerAndClient() throws Exception {
        TlsCloseMetrics serverMetrics = TlsCloseMetrics.builder().tag("side", "server").build();
        TlsCloseMetrics clientMetrics = TlsCloseMetrics.builder().tag("side", "client").build();
        serverMetrics.bindTo(registry);
        clientMetrics.bindTo(registry);
        assertThat(registry.find("tls.close").counters()).as("every series, before any connection").hasSize(48)
                .allSatisfy(c -> assertThat(c.count()).isZero());

        List<GracefulTlsCloseHandler> serverHandlers = new CopyOnWriteArrayList<>();
        List<GracefulTlsCloseHandler> clientHandlers = new CopyOnWriteArrayList<>();
        server = ReactorNettyTlsClose.builder()
                .handler(() -> {
                    GracefulTlsCloseHandler handler = handler();
                    serverHandlers.add(handler);
                    return handler;
                })
                .build()
                .apply(HttpServer.create()
                        .host("127.0.0.1")
                        .port(0)
                        .secure(spec -> spec.sslContext(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3))))
                // After the closure handler: it sees the TlsCloseEvent before Reactor Netty's bridge swallows it.
                .doOnChannelInit((observer, channel, remote) -> {
                    if (channel.pipeline().get(ReactorNettyTlsClose.HANDLER_NAME) != null) {
                        channel.pipeline().addAfter(ReactorNettyTlsClose.HANDLER_NAME, "tlsCloseMetrics",
                                serverMetrics.handler());
                    }
                })
                .route(routes -> routes
                        .get("/hello", (req, res) -> res.sendString(Mono.just("hello")))
                        .get("/bye", (req, res) -> res.keepAlive(false).sendString(Mono.just("bye"))))
                .bindNow(WAIT);
        HttpClient client = ReactorNettyTlsClose.builder()
                .handler(() -> {
                    GracefulTlsCloseHandler handler = handler();
                    clientHandlers.add(handler);
                    return handler;
                })
                .onClose(closure -> clientMetrics.record(closure.event()))
                .build()
                .apply(HttpClient.create(ConnectionProvider.newConnection())
                        .host("127.0.0.1")
                        .port(server.port())
                        .secure(spec -> spec.sslContext(Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3))));

        // Two clean closures begun by the client (a new connection per request, closed after the response).
        for (int i = 0; i < 2; i++) {
            assertThat(client.get().uri("/hello").responseContent().aggregate().asString().block(WAIT))
                    .isEqualTo("hello");
        }
        // One clean closure begun by the server (Connection: close).
        assertThat(client.get().uri("/bye").responseContent().aggregate().asString().block(WAIT))
                .isEqualTo("bye");
        // One truncation: a client without the handler drops TCP without close_notify.
        assertThat(RawTlsClient.getThenDropTcp(server.port(), "/hello")).contains("hello");

        awaitClosures(serverHandlers, 4);
        awaitClosures(clientHandlers, 3);

        // The reactor-netty module's HTTP verdict marks HTTP messages: every closure came between messages.
        assertThat(count("server", "CLOSE_NOTIFY_RECEIVED", "PEER")).isEqualTo(2);
        assertThat(count("server", "CLOSE_NOTIFY_RECEIVED", "LOCAL")).isEqualTo(1);
        assertThat(count("server", "TRUNCATED", "PEER")).isEqualTo(1);
        assertThat(total("server")).isEqualTo(4);
        assertThat(timer("server", "CLOSE_NOTIFY_RECEIVED")).as("the one closure the server began").isEqualTo(1);
        assertThat(timer("server", "TRUNCATED")).as("a closure the peer began is not timed").isZero();

        // The client began both /hello closures; the /bye one may go either way (a simultaneous close).
        double clientLocal = count("client", "CLOSE_NOTIFY_RECEIVED", "LOCAL");
        assertThat(clientLocal).isBetween(2.0, 3.0);
        assertThat(clientLocal + count("client", "CLOSE_NOTIFY_RECEIVED", "PEER")).isEqualTo(3);
        assertThat(total("client")).isEqualTo(3);
        assertThat((double) timer("client", "CLOSE_NOTIFY_RECEIVED")).isEqualTo(clientLocal);
    }

    private double count(String side, String status, String initiator) {
        return registry.get("tls.close")
                .tags("side", side, "status", status, "initiator", initiator, "message", "BETWEEN_MESSAGES")
                .counter()
                .count();
    }

    private double total(String side) {
        return registry.find("tls.close").tag("side", side).counters().stream().mapToDouble(Counter::count).sum();
    }

    private long timer(String side, String status) {
        return registry.get("tls.close.duration").tags("side", side, "status", status).timer().count();
    }

    /**
     * Waits for the closure of every connection of one side. On the server the handler fires its
     * {@link TlsCloseEvent} down the pipeline (through the metrics handler) before it completes
     * {@code closeFuture()}; on the client {@code record} is the future's first listener, and the one added here runs
     * after it. Either way the counters are final once these waits end.
     */
    private static void awaitClosures(List<GracefulTlsCloseHandler> handlers, int expected) throws Exception {
        assertThat(handlers).as("connections").hasSize(expected);
        for (GracefulTlsCloseHandler handler : handlers) {
            CompletableFuture<Object> notified = new CompletableFuture<>();
            handler.closeFuture().addListener(f -> notified.complete(null));
            notified.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    private static GracefulTlsCloseHandler handler() {
        return GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(DEADLINE).closeNotifyFlushTimeout(DEADLINE)
                .build();
    }
}
