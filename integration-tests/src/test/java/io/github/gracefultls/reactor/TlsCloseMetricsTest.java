package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.Tls;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;

import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The metrics recipe of docs/metrics.md: a counter per {@link TlsCloseStatus} and {@link TlsCloseInitiator} with
 * Micrometer, fed by a handler placed after {@link GracefulTlsCloseHandler} that listens for {@link TlsCloseEvent}.
 * Micrometer is a test dependency only: the handler's module depends on nothing but Netty.
 */
class TlsCloseMetricsTest {

    /** Bound on every wait here, longer than {@link #DEADLINE}: far from any stall of a loaded machine. */
    private static final Duration WAIT = Duration.ofSeconds(45);
    /** Every deadline of both sides' handlers: each side answers the other, however loaded the machine. */
    private static final Duration DEADLINE = Duration.ofSeconds(30);

    /**
     * Counts TLS closures in {@code tls.close}, tagged {@code status} and {@code initiator}. Stateless apart from
     * the counters, so one instance serves every channel.
     */
    @ChannelHandler.Sharable
    static final class TlsCloseMetrics extends ChannelInboundHandlerAdapter {

        private final Map<TlsCloseStatus, Map<TlsCloseInitiator, Counter>> counters =
                new EnumMap<>(TlsCloseStatus.class);

        TlsCloseMetrics(MeterRegistry registry) {
            // Registered up front, so that every series exists (at 0) before its first closure.
            for (TlsCloseStatus status : TlsCloseStatus.values()) {
                Map<TlsCloseInitiator, Counter> byInitiator = new EnumMap<>(TlsCloseInitiator.class);
                for (TlsCloseInitiator initiator : TlsCloseInitiator.values()) {
                    byInitiator.put(initiator, Counter.builder("tls.close")
                            .description("TLS closures by outcome (graceful-tls-close)")
                            .tag("status", status.name())
                            .tag("initiator", initiator.name())
                            .register(registry));
                }
                counters.put(status, byInitiator);
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                TlsCloseEvent e = (TlsCloseEvent) evt;
                counters.get(e.status()).get(e.initiator()).increment();
            }
            ctx.fireUserEventTriggered(evt);
        }
    }

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
    void countsClosuresPerStatusAndInitiator() throws Exception {
        TlsCloseMetrics metrics = new TlsCloseMetrics(registry);
        List<GracefulTlsCloseHandler> serverHandlers = new CopyOnWriteArrayList<>();
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
                        channel.pipeline().addAfter(ReactorNettyTlsClose.HANDLER_NAME, "tlsCloseMetrics", metrics);
                    }
                })
                .route(routes -> routes
                        .get("/hello", (req, res) -> res.sendString(Mono.just("hello")))
                        .get("/bye", (req, res) -> res.keepAlive(false).sendString(Mono.just("bye"))))
                .bindNow(WAIT);
        HttpClient client = ReactorNettyTlsClose.builder().handler(TlsCloseMetricsTest::handler).build()
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
        // One truncation: the client drops TCP without close_notify.
        assertThat(RawTlsClient.getThenDropTcp(server.port(), "/hello")).contains("hello");

        awaitClosures(serverHandlers, 4);
        assertThat(count(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER)).isEqualTo(2);
        assertThat(count(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL)).isEqualTo(1);
        assertThat(count(TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER)).isEqualTo(1);
        assertThat(count(TlsCloseStatus.TRUNCATED, TlsCloseInitiator.LOCAL)).isZero();
        assertThat(registry.find("tls.close").tag("status", TlsCloseStatus.TIMED_OUT.name()).counters())
                .hasSize(2)
                .allSatisfy(c -> assertThat(c.count()).isZero());
        assertThat(registry.find("tls.close").tag("status", TlsCloseStatus.FAILED.name()).counters())
                .hasSize(2)
                .allSatisfy(c -> assertThat(c.count()).isZero());
    }

    private double count(TlsCloseStatus status, TlsCloseInitiator initiator) {
        return registry.get("tls.close")
                .tag("status", status.name())
                .tag("initiator", initiator.name())
                .counter()
                .count();
    }

    /**
     * Waits for the closure of every server connection. The handler fires its {@link TlsCloseEvent} down the
     * pipeline (through the metrics handler) before it completes {@code closeFuture()}, so the counters are final
     * once every future is done.
     */
    private void awaitClosures(List<GracefulTlsCloseHandler> serverHandlers, int expected) throws Exception {
        assertThat(serverHandlers).as("server connections").hasSize(expected);
        for (GracefulTlsCloseHandler handler : serverHandlers) {
            handler.closeFuture().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        }
        double total = registry.find("tls.close").counters().stream().mapToDouble(Counter::count).sum();
        assertThat(total).as("TLS closures counted").isEqualTo(expected);
    }

    private static GracefulTlsCloseHandler handler() {
        return GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(DEADLINE).closeNotifyFlushTimeout(DEADLINE)
                .build();
    }
}
