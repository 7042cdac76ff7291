package io.github.gracefultls.reactor;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.PeerClosePolicy;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import reactor.netty.ChannelPipelineConfigurer;
import reactor.netty.Connection;
import reactor.netty.NettyPipeline;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.server.HttpServer;
import reactor.netty.tcp.TcpClient;
import reactor.netty.tcp.TcpServer;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Wires {@link GracefulTlsCloseHandler} into Reactor Netty 1.3 servers and clients, and hands out each connection's
 * TLS closure.
 *
 * <pre>
 * ReactorNettyTlsClose tlsClose = ReactorNettyTlsClose.builder()
 *         .onClose(c -&gt; log.info("{} {}", c.remoteAddress(), c.event()))
 *         .build();
 * DisposableServer server = tlsClose.apply(HttpServer.create().port(8443)
 *                 .secure(spec -&gt; spec.sslContext(serverSslContext)))
 *         .route(routes -&gt; routes.get("/hello", (req, res) -&gt; res.sendString(Mono.just("hello"))))
 *         .bindNow();
 * HttpClient client = tlsClose.apply(HttpClient.create().secure(spec -&gt; spec.sslContext(clientSslContext)));
 * tlsClose.closures().filter(c -&gt; !c.event().isClean()).subscribe(c -&gt; alert(c));
 * </pre>
 *
 * <p>What it does on each channel, from {@code doOnChannelInit} (once per connection, after Reactor Netty has added
 * its {@code SslHandler} and its HTTP/1.1 codec, before the handshake):
 * <ul>
 *   <li>puts a new {@link GracefulTlsCloseHandler} (from {@link Builder#handler}) right after Reactor Netty's
 *       {@code SslHandler} ({@link NettyPipeline#SslHandler}), under {@link #HANDLER_NAME}. With SNI mappings
 *       ({@code SslProvider.Builder.addSniMapping}) that name holds an {@code SniHandler}, which replaces itself
 *       with the {@code SslHandler} for the requested host name; the handler binds to that one. A channel without
 *       TLS (no {@code SslHandler}, e.g. the plaintext side of {@code redirectHttpToHttps}) is left alone;</li>
 *   <li>on an HTTP/1.x channel (Reactor Netty's {@link NettyPipeline#HttpCodec} is an {@code HttpServerCodec} or
 *       {@code HttpClientCodec}), puts an {@link HttpTlsTruncationHandler} right after the codec, under
 *       {@link #HTTP_HANDLER_NAME} (see {@link Builder#httpVerdict}): a request or response body that an unclean
 *       TLS end cut short fails with a {@link TlsTruncationException} saying where, instead of completing:
 *       {@code HttpClient}'s {@code responseContent()}, and (through
 *       {@link #HTTP_SERVER_ERROR_NAME}) {@code HttpServer}'s {@code receive()}. A body delimited by the end of the
 *       connection is the one Reactor Netty would otherwise deliver cut and complete;</li>
 *   <li>on a client ({@code apply(HttpClient)}, {@code apply(TcpClient)}), once the closure has begun (the peer's
 *       {@code close_notify} arrived, or any other end), marks the connection not persistent
 *       ({@link Connection#markPersistent(boolean) markPersistent(false)}): Reactor Netty's pool, whose default
 *       eviction predicate drops such connections, then never hands a connection that is being closed to the next
 *       request (see {@link Builder#evictClosingConnections});</li>
 *   <li>when the closure has an outcome, gives it as a {@link TlsClosure} to every {@link Builder#onClose}
 *       listener and to the subscribers of {@link #closures()}.</li>
 * </ul>
 *
 * <p>Reactor Netty's last handler swallows user events, so a handler of the application's would not see the
 * {@link TlsCloseEvent}: the outcome comes from {@link GracefulTlsCloseHandler#closeFuture()} instead, which
 * completes with the same event. {@link #closeOf(Connection)} gives one connection's as a {@link Mono}.
 *
 * <p>Not wired: HTTP/2 and HTTP/3 (the HTTP verdict is HTTP/1.x only, and with ALPN the HTTP/1.1 codec is added after
 * the handshake, when this runs no more: the TLS closure is still handled and reported), and
 * {@link PeerClosePolicy#HALF_CLOSE} / {@link PeerClosePolicy#REUSE_TRANSPORT}, which Reactor Netty does not let hold
 * (it closes the channel on the peer's {@code close_notify}).
 *
 * <p>Immutable and thread-safe; one instance may serve any number of servers and clients, and it keeps no state per
 * connection.
 */
public final class ReactorNettyTlsClose {

    /** The name of the {@link GracefulTlsCloseHandler} in Reactor Netty's pipelines. */
    public static final String HANDLER_NAME = "gracefulTlsClose";
    /** The name of the {@link HttpTlsTruncationHandler} in Reactor Netty's HTTP/1.x pipelines. */
    public static final String HTTP_HANDLER_NAME = "gracefulTlsClose.http";
    /**
     * The name of the handler after {@link #HTTP_HANDLER_NAME} on a server, which turns a request cut by an unclean
     * TLS end into an error of the request's {@code receive()}: Reactor Netty's server would take the failed decoder
     * result for a malformed request, and {@code receive()} would fail only as the connection closes, without the
     * cause.
     */
    public static final String HTTP_SERVER_ERROR_NAME = "gracefulTlsClose.httpServerError";

    private static final InternalLogger LOG = InternalLoggerFactory.getInstance(ReactorNettyTlsClose.class);

    private final Supplier<GracefulTlsCloseHandler> handlers;
    private final List<Consumer<? super TlsClosure>> listeners;
    private final boolean httpVerdict;
    private final boolean evictClosingConnections;
    /** Every closure, to the subscribers present (none: dropped). Emissions are serialized by {@link #emit}. */
    private final Sinks.Many<TlsClosure> sink = Sinks.many().multicast().directBestEffort();
    private final Flux<TlsClosure> closures = sink.asFlux();

    private ReactorNettyTlsClose(Builder b) {
        this.handlers = b.handlers;
        this.listeners = List.copyOf(b.listeners);
        this.httpVerdict = b.httpVerdict;
        this.evictClosingConnections = b.evictClosingConnections;
    }

    /**
     * Returns one with every default: a {@code new GracefulTlsCloseHandler()} per connection, the HTTP verdict, the
     * pool eviction, no listener.
     *
     * @return a new instance
     */
    public static ReactorNettyTlsClose create() {
        return builder().build();
    }

    /**
     * Returns a builder.
     *
     * @return a new builder, with every default
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Returns {@code server} with the handlers wired into each of its connections ({@code doOnChannelInit}, which
     * adds to the server's other channel initializers).
     *
     * @param server an {@code HttpServer}, secured with {@code secure(...)} for the handlers to be added
     * @return a new {@code HttpServer} with the handlers
     */
    public HttpServer apply(HttpServer server) {
        return Objects.requireNonNull(server, "server").doOnChannelInit(configurer(false));
    }

    /**
     * Returns {@code client} with the handlers wired into each connection it opens, pooled or not.
     *
     * @param client an {@code HttpClient}, secured with {@code secure(...)} for the handlers to be added
     * @return a new {@code HttpClient} with the handlers
     */
    public HttpClient apply(HttpClient client) {
        return Objects.requireNonNull(client, "client").doOnChannelInit(configurer(true));
    }

    /**
     * Returns {@code server} with the {@link GracefulTlsCloseHandler} wired into each of its connections.
     *
     * @param server a {@code TcpServer}, secured with {@code secure(...)} for the handler to be added
     * @return a new {@code TcpServer} with the handler
     */
    public TcpServer apply(TcpServer server) {
        return Objects.requireNonNull(server, "server").doOnChannelInit(configurer(false));
    }

    /**
     * Returns {@code client} with the {@link GracefulTlsCloseHandler} wired into each connection it opens.
     *
     * @param client a {@code TcpClient}, secured with {@code secure(...)} for the handler to be added
     * @return a new {@code TcpClient} with the handler
     */
    public TcpClient apply(TcpClient client) {
        return Objects.requireNonNull(client, "client").doOnChannelInit(configurer(true));
    }

    /**
     * Returns the configurer that {@code apply} installs, for {@code doOnChannelInit} of any Reactor Netty transport
     * (e.g. one that a framework builds): as on a client, it also marks a closing connection not persistent, which
     * on a server only makes Reactor Netty close it after the response under way, as it would anyway.
     *
     * @return a configurer for {@code doOnChannelInit}
     */
    public ChannelPipelineConfigurer configurer() {
        return configurer(true);
    }

    /**
     * Returns every TLS closure from now on, of every connection this instance wired: a hot {@link Flux} that never
     * completes. A closure is given to the subscribers present when it happens; one that comes while none is
     * subscribed, or to a subscriber that has not requested it, is dropped for that subscriber (use a listener,
     * {@link Builder#onClose}, to see each one).
     *
     * @return the closures
     */
    public Flux<TlsClosure> closures() {
        return closures;
    }

    /**
     * Returns the TLS closure of one connection, e.g. from {@code req.withConnection(...)} in a server's handler:
     * the {@link TlsCloseEvent} when it happens. Empty if the connection has no {@link GracefulTlsCloseHandler}
     * (not TLS, or not wired); an error if its handshake never succeeded, as
     * {@link GracefulTlsCloseHandler#closeFuture()}.
     *
     * @param connection a Reactor Netty connection
     * @return its closure's outcome
     */
    public static Mono<TlsCloseEvent> closeOf(Connection connection) {
        Channel channel = Objects.requireNonNull(connection, "connection").channel();
        GracefulTlsCloseHandler handler = channel.pipeline().get(GracefulTlsCloseHandler.class);
        if (handler == null) {
            return Mono.empty();
        }
        return Mono.create(sink -> handler.closeFuture().addListener(f -> {
            if (f.isSuccess()) {
                sink.success((TlsCloseEvent) f.getNow());
            } else {
                sink.error(f.cause());
            }
        }));
    }

    private ChannelPipelineConfigurer configurer(boolean client) {
        return (observer, channel, remoteAddress) -> {
            ChannelPipeline pipeline = channel.pipeline();
            if (pipeline.get(NettyPipeline.SslHandler) == null || pipeline.get(HANDLER_NAME) != null) {
                return; // not TLS, or wired already (the same instance applied twice)
            }
            GracefulTlsCloseHandler handler = Objects.requireNonNull(handlers.get(), "handler supplier's result");
            pipeline.addAfter(NettyPipeline.SslHandler, HANDLER_NAME, handler);
            ChannelHandler codec = pipeline.get(NettyPipeline.HttpCodec);
            if (httpVerdict && (codec instanceof HttpServerCodec || codec instanceof HttpClientCodec)) {
                pipeline.addAfter(NettyPipeline.HttpCodec, HTTP_HANDLER_NAME, new HttpTlsTruncationHandler());
                if (codec instanceof HttpServerCodec) {
                    pipeline.addAfter(HTTP_HANDLER_NAME, HTTP_SERVER_ERROR_NAME, ServerVerdict.INSTANCE);
                }
            }
            boolean evict = client && evictClosingConnections;
            handler.closeFuture().addListener(f -> {
                if (!f.isSuccess()) {
                    return; // the handshake never succeeded: there was no TLS session to close
                }
                if (evict) {
                    // Before the listeners: the pool's eviction predicate sees it from the first moment.
                    Connection.from(channel).markPersistent(false);
                }
                emit(new TlsClosure(channel, (TlsCloseEvent) f.getNow()));
            });
        };
    }

    private void emit(TlsClosure closure) {
        for (Consumer<? super TlsClosure> listener : listeners) {
            try {
                listener.accept(closure);
            } catch (RuntimeException e) {
                LOG.warn("A TLS closure listener threw; the other listeners still run: {}", closure, e);
            }
        }
        synchronized (sink) {
            // From many event loops: serialized here, so the sink never fails with FAIL_NON_SERIALIZED. With no
            // subscriber, FAIL_ZERO_SUBSCRIBER: dropped, as documented.
            sink.tryEmitNext(closure);
        }
    }

    /** Builds a {@link ReactorNettyTlsClose}. Not thread-safe; {@link #build()} copies what it holds. */
    public static final class Builder {

        private Supplier<GracefulTlsCloseHandler> handlers = GracefulTlsCloseHandler::new;
        private final List<Consumer<? super TlsClosure>> listeners = new ArrayList<>();
        private boolean httpVerdict = true;
        private boolean evictClosingConnections = true;

        private Builder() {
        }

        /**
         * Sets where each connection's handler comes from, e.g.
         * {@code () -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(Duration.ofSeconds(1)).build()}.
         * It must return a new handler on each call. Default: {@code GracefulTlsCloseHandler::new}. Keep the
         * default {@link PeerClosePolicy#CLOSE}: Reactor Netty closes the channel on the peer's
         * {@code close_notify} whatever the policy.
         *
         * @param handlers a supplier of new handlers
         * @return this builder
         */
        public Builder handler(Supplier<GracefulTlsCloseHandler> handlers) {
            this.handlers = Objects.requireNonNull(handlers, "handlers");
            return this;
        }

        /**
         * Adds a listener that gets every connection's {@link TlsClosure}, once, on the connection's event loop
         * (do not block there). Listeners run in the order added; one that throws is logged and does not stop the
         * others.
         *
         * @param listener the listener
         * @return this builder
         */
        public Builder onClose(Consumer<? super TlsClosure> listener) {
            listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        /**
         * Whether HTTP/1.x channels get an {@link HttpTlsTruncationHandler}, so that a message cut by an unclean
         * TLS end is an error and the outcome says whether a message was cut
         * ({@link TlsCloseEvent#isMessageCut()}). Default {@code true}. Without it, Reactor Netty's
         * {@code HttpClient} delivers a body delimited by the end of the connection that an attacker cut as a
         * complete one.
         *
         * @param enabled whether to add it
         * @return this builder
         */
        public Builder httpVerdict(boolean enabled) {
            this.httpVerdict = enabled;
            return this;
        }

        /**
         * Whether a client connection whose TLS closure has begun is marked not persistent, so that Reactor Netty's
         * pool (with its default eviction predicate) drops it instead of handing it to the next request. Default
         * {@code true}. A pool with its own {@code evictionPredicate} replaces the default one: include
         * {@code !connection.isPersistent()} in it to keep this.
         *
         * @param enabled whether to mark them
         * @return this builder
         */
        public Builder evictClosingConnections(boolean enabled) {
            this.evictClosingConnections = enabled;
            return this;
        }

        /**
         * Returns a new {@link ReactorNettyTlsClose} with this builder's settings.
         *
         * @return a new instance
         */
        public ReactorNettyTlsClose build() {
            return new ReactorNettyTlsClose(this);
        }
    }
}
