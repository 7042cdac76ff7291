package io.github.gracefultls.reactor;

import io.github.gracefultls.testing.Tls;
import io.netty.handler.ssl.SslContext;
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A runnable demo of {@link ReactorNettyTlsClose} (docs/reactor-netty.md): a secure {@link HttpServer}, an
 * {@link HttpClient} with a connection pool, and the outcome of each TLS closure printed by a listener.
 */
public final class ReactorNettyTlsCloseDemo {

    private ReactorNettyTlsCloseDemo() {
    }

    /** Runs a server and a pooled client, and prints the outcome of each closure. */
    public static void main(String[] args) throws InterruptedException {
        SslContext serverContext = Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3);
        SslContext clientContext = Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3);
        // Three connections close below, each seen by the server and the client: six closures.
        CountDownLatch printed = new CountDownLatch(6);
        ReactorNettyTlsClose tlsClose = ReactorNettyTlsClose.builder()
                .onClose(c -> {
                    System.out.println(c.remoteAddress() + ": " + c.event());
                    printed.countDown();
                })
                .build();

        DisposableServer server = tlsClose.apply(HttpServer.create()
                        .host("127.0.0.1")
                        .port(0)
                        .secure(spec -> spec.sslContext(serverContext)))
                .route(routes -> routes
                        .get("/hello", (req, res) -> res.sendString(Mono.just("hello")))
                        .get("/bye", (req, res) -> res.keepAlive(false).sendString(Mono.just("bye"))))
                .bindNow();

        ConnectionProvider pool = ConnectionProvider.create("demo", 1);
        HttpClient client = tlsClose.apply(HttpClient.create(pool)
                .host("127.0.0.1")
                .port(server.port())
                .secure(spec -> spec.sslContext(clientContext)));
        try {
            // Two requests on one kept-alive, pooled connection: nothing closes.
            for (int i = 0; i < 2; i++) {
                System.out.println("GET /hello -> " + client.get().uri("/hello")
                        .responseContent().aggregate().asString().block(Duration.ofSeconds(10)));
            }
            // The pool closes its connection: channel.close(), intercepted, close_notify both ways.
            pool.disposeLater().block(Duration.ofSeconds(10));
            // The server ends the connection (Connection: close).
            System.out.println("GET /bye -> " + tlsClose.apply(HttpClient.newConnection()
                            .host("127.0.0.1")
                            .port(server.port())
                            .secure(spec -> spec.sslContext(clientContext)))
                    .get().uri("/bye")
                    .responseContent().aggregate().asString().block(Duration.ofSeconds(10)));
            // A new connection per request, closed by the client after the response.
            System.out.println("GET /hello -> " + tlsClose.apply(HttpClient.newConnection()
                            .host("127.0.0.1")
                            .port(server.port())
                            .secure(spec -> spec.sslContext(clientContext)))
                    .get().uri("/hello")
                    .responseContent().aggregate().asString().block(Duration.ofSeconds(10)));
            if (!printed.await(10, TimeUnit.SECONDS)) {
                System.out.println("(some closures not seen within 10 s)");
            }
        } finally {
            server.disposeNow(Duration.ofSeconds(10));
        }
    }
}
