package io.github.gracefultls;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.util.ReferenceCountUtil;

/**
 * Sits right after {@link GracefulTlsCloseHandler} only while a local closure is under way, so that the handler itself
 * stays off the read and write paths. It rejects writes issued after our {@code close_notify} and, under
 * {@link TlsCloseMode#SHUT_RDWR}, releases inbound application data unread and counts it.
 */
final class ClosingGuard extends ChannelDuplexHandler {

    private final GracefulTlsCloseHandler owner;

    ClosingGuard(GracefulTlsCloseHandler owner) {
        this.owner = owner;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (owner.isDiscardingInbound()) {
            owner.addDiscardedBytes(readableBytes(msg));
            ReferenceCountUtil.release(msg);
        } else {
            ctx.fireChannelRead(msg);
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        owner.recheckPeerCloseNotify();
        if (owner.isDiscardingInbound() && !ctx.channel().config().isAutoRead()) {
            // Nobody downstream asks for more while we wait for the peer's close_notify.
            ctx.read();
        }
        ctx.fireChannelReadComplete();
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        ReferenceCountUtil.release(msg);
        promise.tryFailure(new SslClosedEngineException(
                "write rejected: close_notify was already sent on " + ctx.channel() + " (TLS output is closed)"));
    }

    private static long readableBytes(Object msg) {
        if (msg instanceof ByteBuf) {
            return ((ByteBuf) msg).readableBytes();
        }
        if (msg instanceof ByteBufHolder) {
            return ((ByteBufHolder) msg).content().readableBytes();
        }
        return 0;
    }
}
