package io.github.gracefultls;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;

import javax.net.ssl.SSLException;
import java.io.IOException;

/**
 * Sits right before the {@code SslHandler}, where it sees the end of the transport's input (FIN, an I/O error, the
 * channel going inactive) before the {@code SslHandler} releases its undecoded bytes. It records how many bytes of an
 * incomplete TLS record were waiting, so that a truncation can say whether it cut a record. It does not override
 * {@code channelRead}, so it costs nothing while data flows.
 */
final class TransportObserver extends ChannelInboundHandlerAdapter {

    private final GracefulTlsCloseHandler owner;

    TransportObserver(GracefulTlsCloseHandler owner) {
        this.owner = owner;
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof ChannelInputShutdownEvent) {
            owner.transportInputEnding();
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) throws Exception {
        if (cause instanceof IOException && !(cause instanceof SSLException)) {
            owner.transportInputEnding();
        }
        ctx.fireExceptionCaught(cause);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        owner.transportInputEnding();
        ctx.fireChannelInactive();
    }
}
