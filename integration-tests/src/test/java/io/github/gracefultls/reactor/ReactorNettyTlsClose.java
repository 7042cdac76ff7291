package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.testing.Tls;
import io.netty.channel.Channel;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SslContext;
import reactor.core.publisher.Mono;
import reactor.netty.ChannelPipelineConfigurer;
import reactor.netty.DisposableServer;
import reactor.netty.NettyPipeline;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.ConnectionProvider;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * How to wire {@link GracefulTlsCloseHandler} into Reactor Netty 1.3 (docs/reactor-netty.md), and a
 * runnable demo ({@link #main}): a secure {@link HttpServer}, an {@link HttpClient} with a connection pool, the
 * outcome of each TLS closure printed.
 *
 * <p>The hook is {@code doOnChannelInit}: it runs once per channel, after Reactor Netty has put its
 * {@code SslHandler} ({@link NettyPipeline#SslHandler}) into the pipeline and before the handshake, so the handler
 * follows the record framing from the first record. {@code doOnConnected} runs again for each request on a pooled
 * connection, after the handshake, and would add the handler twice ({@code ReactorNettyTest}).
 */
public final class ReactorNettyTlsClose {

    /** The handler's name in Reactor Netty pipelines. */
    public static final String HANDLER_NAME = "gracefulTlsClose";

    private ReactorNettyTlsClose() {
    }

    /**
     * A {@link ChannelPipelineConfigurer} for {@code HttpServer.doOnChannelInit} / {@code HttpClient.doOnChannelInit}
     * that puts a new handler right after Reactor Netty's {@code SslHandler}, and hands each channel's
     * {@link TlsCloseEvent} to {@code onClose}.
     *
     * <p>Reactor Netty's last handler ({@code reactor.right.reactiveBridge}) swallows user events, so the outcome
     * is read from {@link GracefulTlsCloseHandler#closeFuture()} rather than from a handler further down.
     * Channels without TLS (no {@code SslHandler}) are left alone.
     */
    public static ChannelPipelineConfigurer gracefulTlsClose(Supplier<GracefulTlsCloseHandler> handlers,
                                                             Consumer<? super TlsCloseEvent> onClose) {
        return gracefulTlsClose(handlers, (channel, event) -> onClose.accept(event));
    }

    /**
     * As {@link #gracefulTlsClose(Supplier, Consumer)}, with the channel whose closure it was: the outcome per
     * connection, e.g. next to the host name a client asked for by SNI.
     *
     * <p>With SNI mappings ({@code SslProvider.Builder.addSniMapping}), Reactor Netty puts an {@code SniHandler}
     * under the name {@link NettyPipeline#SslHandler}; it replaces itself with the {@code SslHandler} for the host
     * name once the ClientHello has arrived. The handler, added after it, binds to that {@code SslHandler} then.
     */
    public static ChannelPipelineConfigurer gracefulTlsClose(
            Supplier<GracefulTlsCloseHandler> handlers, BiConsumer<? super Channel, ? super TlsCloseEvent> onClose) {
        return (observer, channel, remoteAddress) -> {
            ChannelPipeline pipeline = channel.pipeline();
            if (pipeline.get(NettyPipeline.SslHandler) == null) {
                return;
            }
            GracefulTlsCloseHandler handler = handlers.get();
            pipeline.addAfter(NettyPipeline.SslHandler, HANDLER_NAME, handler);
            handler.closeFuture().addListener(f -> {
                if (f.isSuccess()) {
                    onClose.accept(channel, (TlsCloseEvent) f.getNow());
                }
                // Failed: the handshake never succeeded, there was no TLS session to close.
            });
        };
    }

    /** Runs a server and a pooled client, and prints the outcome of each closure. */
    public static void main(String[] args) throws ExecutionException, TimeoutException {
        SslContext serverContext = Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3);
        SslContext clientContext = Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3);
        // Every handler made, so that the demo can wait for each closure to be printed before it ends.
        List<GracefulTlsCloseHandler> handlers = new CopyOnWriteArrayList<>();
        Supplier<GracefulTlsCloseHandler> newHandler = () -> {
            GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
            handlers.add(handler);
            return handler;
        };

        DisposableServer server = HttpServer.create()
                .host("127.0.0.1")
                .port(0)
                .secure(spec -> spec.sslContext(serverContext))
                .doOnChannelInit(gracefulTlsClose(newHandler, e -> System.out.println("server: " + e)))
                .route(routes -> routes
                        .get("/hello", (req, res) -> res.sendString(Mono.just("hello")))
                        .get("/bye", (req, res) -> res.keepAlive(false).sendString(Mono.just("bye"))))
                .bindNow();

        ConnectionProvider pool = ConnectionProvider.create("demo", 1);
        HttpClient client = HttpClient.create(pool)
                .host("127.0.0.1")
                .port(server.port())
                .secure(spec -> spec.sslContext(clientContext))
                .doOnChannelInit(gracefulTlsClose(newHandler, e -> System.out.println("client: " + e)));
        try {
            // Two requests on one kept-alive, pooled connection: nothing closes.
            for (int i = 0; i < 2; i++) {
                System.out.println("GET /hello -> " + client.get().uri("/hello")
                        .responseContent().aggregate().asString().block(Duration.ofSeconds(10)));
            }
            // The pool closes its connections: channel.close(), intercepted, close_notify both ways.
            pool.disposeLater().block(Duration.ofSeconds(10));
            // The server ends the connection (Connection: close): the server begins the closure.
            System.out.println("GET /bye -> " + HttpClient.newConnection()
                    .host("127.0.0.1")
                    .port(server.port())
                    .secure(spec -> spec.sslContext(clientContext))
                    .doOnChannelInit(gracefulTlsClose(newHandler, e -> System.out.println("client: " + e)))
                    .get().uri("/bye")
                    .responseContent().aggregate().asString().block(Duration.ofSeconds(10)));
            // Each outcome is printed by a listener of its handler's closeFuture(); a listener added now runs after
            // that one, so once it has run, the closure is printed.
            for (GracefulTlsCloseHandler handler : handlers) {
                CompletableFuture<Void> printed = new CompletableFuture<>();
                handler.closeFuture().addListener(f -> printed.complete(null));
                printed.get(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            server.disposeNow(Duration.ofSeconds(10));
        }
    }
}
