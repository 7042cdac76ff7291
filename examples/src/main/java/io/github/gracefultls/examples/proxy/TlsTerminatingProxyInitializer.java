package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseRelay;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.ssl.SslContext;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.function.BiConsumer;
import java.util.function.Supplier;

/**
 * Sets up a client's channel: {@code SslHandler}, {@link GracefulTlsCloseHandler}, then
 * {@link TlsTerminatingProxyFrontendHandler}, which connects {@code backend} to {@code upstream} and gives
 * {@code onOutcome} the client's address and the outcome of the relay. The server channel's children need
 * {@code AUTO_READ} off and {@code ALLOW_HALF_CLOSURE} on.
 */
public final class TlsTerminatingProxyInitializer extends ChannelInitializer<Channel> {

    private final SslContext serverContext;
    private final Supplier<GracefulTlsCloseHandler> tlsClose;
    private final Bootstrap backend;
    private final InetSocketAddress upstream;
    private final BiConsumer<SocketAddress, TlsCloseRelay.Outcome> onOutcome;

    public TlsTerminatingProxyInitializer(SslContext serverContext, Supplier<GracefulTlsCloseHandler> tlsClose,
                                          Bootstrap backend, InetSocketAddress upstream,
                                          BiConsumer<SocketAddress, TlsCloseRelay.Outcome> onOutcome) {
        this.serverContext = serverContext;
        this.tlsClose = tlsClose;
        this.backend = backend;
        this.upstream = upstream;
        this.onOutcome = onOutcome;
    }

    @Override
    protected void initChannel(Channel ch) {
        ch.pipeline().addLast("ssl", serverContext.newHandler(ch.alloc()));
        ch.pipeline().addLast("tls-close", tlsClose.get());
        ch.pipeline().addLast("frontend", new TlsTerminatingProxyFrontendHandler(backend, upstream, onOutcome));
    }
}
