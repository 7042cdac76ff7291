package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.ssl.SslContext;

import java.net.InetSocketAddress;
import java.util.function.Supplier;

/**
 * Sets up the upstream connection: nothing for plain TCP; for TLS, {@code SslHandler} (checking the upstream's
 * name) and {@link GracefulTlsCloseHandler}.
 */
public final class TlsTerminatingProxyBackendInitializer extends ChannelInitializer<Channel> {

    private final SslContext upstreamContext;
    private final InetSocketAddress upstream;
    private final Supplier<GracefulTlsCloseHandler> tlsClose;

    public TlsTerminatingProxyBackendInitializer(SslContext upstreamContext, InetSocketAddress upstream,
                                                 Supplier<GracefulTlsCloseHandler> tlsClose) {
        this.upstreamContext = upstreamContext;
        this.upstream = upstream;
        this.tlsClose = tlsClose;
    }

    @Override
    protected void initChannel(Channel ch) {
        if (upstreamContext != null) {
            ch.pipeline().addLast("ssl", upstreamContext.newHandler(ch.alloc(), upstream.getHostString(),
                    upstream.getPort()));
            ch.pipeline().addLast("tls-close", tlsClose.get());
        }
    }
}
