package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.TlsCloseRelay;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.function.BiConsumer;

/**
 * Once the client's channel is active, connects the upstream on the same event loop, with auto-read off and
 * half-closure on as for the client, links the two with {@link TlsCloseRelay}, and leaves the pipeline. A client
 * whose upstream cannot be reached, or whose TLS upstream fails its handshake, gets a reset, not a clean, empty
 * response, within the relay's drain period, even if it waits for the server to speak first.
 */
public final class TlsTerminatingProxyFrontendHandler extends ChannelInboundHandlerAdapter {

    private static final System.Logger LOG = System.getLogger(TlsTerminatingProxy.class.getName());

    private final Bootstrap backend;
    private final InetSocketAddress upstream;
    private final BiConsumer<SocketAddress, TlsCloseRelay.Outcome> onOutcome;

    TlsTerminatingProxyFrontendHandler(Bootstrap backend, InetSocketAddress upstream,
                                       BiConsumer<SocketAddress, TlsCloseRelay.Outcome> onOutcome) {
        this.backend = backend;
        this.upstream = upstream;
        this.onOutcome = onOutcome;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        Channel frontend = ctx.channel();
        // On the frontend's loop, as Netty's HexDumpProxy does, unless the bootstrap brings a group of its own: the
        // relay then hops between the two loops.
        (backend.config().group() != null ? backend.clone() : backend.clone(frontend.eventLoop()))
                .option(ChannelOption.AUTO_READ, false)           // the relay reads after each write
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)   // a FIN ends one direction only
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 10_000)
                .connect(upstream).addListener((ChannelFuture f) -> {
                    if (!f.isSuccess()) {
                        LOG.log(System.Logger.Level.WARNING, "{0}: cannot connect to {1}: {2}",
                                frontend.remoteAddress(), upstream, f.cause().toString());
                        reset(frontend);
                        return;
                    }
                    if (!frontend.isActive()) {
                        // The client left while we connected: we cannot tell how, so the upstream gets a reset.
                        reset(f.channel());
                        return;
                    }
                    TlsCloseRelay relay = TlsCloseRelay.link(frontend, f.channel());
                    SocketAddress client = frontend.remoteAddress();
                    relay.closeFuture().addListener(r -> onOutcome.accept(client, relay.closeFuture().getNow()));
                });
        ctx.pipeline().remove(this);
    }

    /** Closes with a TCP reset, below TLS: no close_notify. */
    private static void reset(Channel ch) {
        ch.config().setOption(ChannelOption.SO_LINGER, 0);
        ChannelHandlerContext first = ch.pipeline().firstContext();
        if (first != null) {
            first.close();
        } else {
            ch.close();
        }
    }
}
