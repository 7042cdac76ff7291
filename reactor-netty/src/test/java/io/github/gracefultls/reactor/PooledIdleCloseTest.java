package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.Tls;
import io.netty.channel.Channel;
import io.netty.handler.ssl.SslContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import reactor.core.Exceptions;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.client.PrematureCloseException;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;
import reactor.util.retry.Retry;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A pooled {@code HttpClient} against a server that closes idle keep-alive connections gracefully (its
 * {@code idleTimeout}: {@code close_notify}, then the TCP close): a connection whose server has begun to close must
 * not be handed to the next request. Reactor Netty closes the channel on the server's {@code close_notify} itself, and
 * the module adds the handler's closure (the reply, the wait) before the channel is inactive: the module marks the
 * connection not persistent from the first moment, so that the pool drops it.
 */
class PooledIdleCloseTest {

    private static final Duration WAIT = Duration.ofSeconds(30);
    /** The idempotent request's retry in the third client: once, when the connection closed before a response. */
    private static final Retry RETRY_ONCE = Retry.max(1).filter(PrematureCloseException.class::isInstance);
    /** The server's idle timeout in the measurement. */
    private static final int IDLE_MILLIS = 30;
    /**
     * Rounds of the measurement, each of 100 requests per client, the three clients in turn: 2 in the build, more
     * with {@code -Dpooled.rounds=10} (the docs' numbers).
     */
    private static final int ROUNDS = Integer.getInteger("pooled.rounds", 2);

    private final List<Runnable> cleanup = new ArrayList<>();

    @AfterEach
    void tearDown() {
        for (int i = cleanup.size() - 1; i >= 0; i--) {
            cleanup.get(i).run();
        }
    }

    private DisposableServer server(Duration idleTimeout) {
        DisposableServer server = ReactorNettyTlsClose.builder()
                .handler(() -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(WAIT).build())
                .build()
                .apply(HttpServer.create()
                        .host("127.0.0.1")
                        .port(0)
                        .secure(spec -> spec.sslContext(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3)))
                        .idleTimeout(idleTimeout)
                        .route(routes -> routes.get("/hello", (req, res) -> res.sendString(Mono.just("hello")))))
                .bindNow(WAIT);
        cleanup.add(() -> server.disposeNow(WAIT));
        return server;
    }

    private ConnectionProvider pool(String name, int size) {
        ConnectionProvider pool = ConnectionProvider.builder(name).maxConnections(size).build();
        cleanup.add(() -> pool.disposeLater().block(WAIT));
        return pool;
    }

    private static HttpClient client(ConnectionProvider pool, DisposableServer server) {
        SslContext context = Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3);
        return HttpClient.create(pool)
                .host("127.0.0.1")
                .port(server.port())
                .secure(spec -> spec.sslContext(context));
    }

    /**
     * The window the module closes, made certain: a request issued at the moment the client's handler has the
     * server's {@code close_notify} (from the closure's listener, on the connection's event loop, before the channel
     * is inactive). With the connection marked not persistent the pool opens a new connection and the request
     * succeeds; unmarked ({@code evictClosingConnections(false)}), the pool hands out the closing connection and the
     * request fails.
     */
    @Test
    void requestIssuedAsTheServersCloseNotifyArrivesGetsANewConnection() throws Exception {
        assertThat(requestAtPeerClose(true)).as("with the eviction").isNull();
        assertThat(requestAtPeerClose(false)).as("without the eviction").isNotNull();
    }

    /** The error of a request issued from the client's closure listener, or null if it succeeded. */
    private Throwable requestAtPeerClose(boolean evict) throws Exception {
        DisposableServer server = server(Duration.ofMillis(200));
        Set<Channel> channels = ConcurrentHashMap.newKeySet();
        CompletableFuture<Throwable> result = new CompletableFuture<>();
        HttpClient[] client = new HttpClient[1];
        ReactorNettyTlsClose module = ReactorNettyTlsClose.builder()
                .handler(() -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(WAIT).build())
                .evictClosingConnections(evict)
                .onClose(c -> {
                    if (c.event().initiator() != TlsCloseInitiator.PEER || result.isDone()) {
                        return;
                    }
                    assertThat(c.channel().isActive()).as("the channel, at the closure's event").isTrue();
                    client[0].get().uri("/hello").responseContent().aggregate().asString()
                            .subscribe(s -> result.complete(null), result::complete);
                })
                .build();
        client[0] = module.apply(client(pool("at-close-" + evict, 1), server))
                .doOnChannelInit((observer, ch, remote) -> channels.add(ch));

        assertThat(client[0].get().uri("/hello").responseContent().aggregate().asString().block(WAIT))
                .isEqualTo("hello");
        Throwable error = result.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        if (error == null) {
            assertThat(channels).as("a new connection for the second request").hasSize(2);
        }
        return error == null ? null : Exceptions.unwrap(error);
    }

    /**
     * The measurement (docs/reactor-netty.md): clients that keep sending on pooled connections, pausing about the
     * server's idle timeout between requests, so that some requests meet a connection that the server is closing.
     * Failures are counted with and without the module on the client, in the same run; asserted is only that every
     * request was counted (the counts depend on timing).
     */
    @Test
    void requestFailuresAgainstAServerClosingIdleConnections() {
        DisposableServer server = server(Duration.ofMillis(IDLE_MILLIS));
        int workers = 4;
        int perRound = 25;
        ReactorNettyTlsClose module = ReactorNettyTlsClose.builder()
                .handler(() -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(WAIT).build())
                .build();
        HttpClient plain = client(pool("measure-without", workers), server);
        HttpClient wired = module.apply(client(pool("measure-with", workers), server));
        Map<String, Integer> without = new TreeMap<>();
        Map<String, Integer> with = new TreeMap<>();
        Map<String, Integer> withRetry = new TreeMap<>();
        // In rounds, the three in turn: a slower start (a cold JIT) or a busy moment spreads over all three.
        for (int round = 0; round < ROUNDS; round++) {
            run(plain, false, workers, perRound, round).forEach((k, v) -> without.merge(k, v, Integer::sum));
            run(wired, false, workers, perRound, round).forEach((k, v) -> with.merge(k, v, Integer::sum));
            run(wired, true, workers, perRound, round).forEach((k, v) -> withRetry.merge(k, v, Integer::sum));
        }
        int total = workers * perRound * ROUNDS;

        System.out.printf("pooled client vs. idle close (%d ms), %d requests per run:%n  without the module: %s%n"
                + "  with the module:    %s%n  with the module, GET retried once on PrematureCloseException: %s%n",
                IDLE_MILLIS, total, without, with, withRetry);
        for (Map<String, Integer> counts : List.of(without, with, withRetry)) {
            assertThat(counts.values().stream().mapToInt(Integer::intValue).sum()).isEqualTo(total);
        }
    }

    /** Outcome counts: "ok" and one entry per failure kind. */
    private static Map<String, Integer> run(HttpClient client, boolean retry, int workers, int perWorker, int round) {
        Map<String, AtomicInteger> counts = new ConcurrentHashMap<>();
        Random random = new Random(round); // the same pauses for each client in a round
        List<Duration> pauses = new ArrayList<>();
        for (int i = 0; i < workers * perWorker; i++) {
            pauses.add(Duration.ofMillis(IDLE_MILLIS - 5 + random.nextInt(11)));
        }
        Flux.range(0, workers)
                .flatMap(w -> Flux.range(0, perWorker).concatMap(i -> Mono.delay(pauses.get(w * perWorker + i))
                        .then(retry ? get(client).retryWhen(RETRY_ONCE) : get(client))
                        .map(s -> "ok")
                        .onErrorResume(e -> Mono.just(kind(e)))
                        .doOnNext(k -> counts.computeIfAbsent(k, x -> new AtomicInteger()).incrementAndGet())))
                .then()
                .block(Duration.ofMinutes(2));
        Map<String, Integer> result = new TreeMap<>();
        counts.forEach((k, v) -> result.put(k, v.get()));
        return result;
    }

    private static Mono<String> get(HttpClient client) {
        return client.get().uri("/hello").responseContent().aggregate().asString();
    }

    private static String kind(Throwable e) {
        Throwable t = Exceptions.unwrap(e);
        String message = String.valueOf(t.getMessage());
        return t.getClass().getSimpleName() + ": " + (message.length() > 60 ? message.substring(0, 60) : message);
    }
}
