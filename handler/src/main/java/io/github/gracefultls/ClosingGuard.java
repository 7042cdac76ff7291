package io.github.gracefultls;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.util.ReferenceCountUtil;

/**
 * What a {@link Closure} does in the pipeline, right after the {@link GracefulTlsCloseHandler}, while our
 * {@code close_notify} is out, so that the handler itself stays off the read and write paths: it rejects writes
 * issued after our {@code close_notify}, releases inbound application data unread under
 * {@link TlsCloseMode#SHUT_RDWR} and counts it, and lets the closure look again after each read.
 */
abstract class ClosingGuard extends ChannelDuplexHandler {

    /** Whether inbound application data is released unread now. */
    abstract boolean isDiscarding();

    /** Counts application bytes released unread. */
    abstract void discarded(long bytes);

    /** Called after each read, before the read-complete goes on. */
    abstract void readComplete();

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (isDiscarding()) {
            discarded(readableBytes(msg));
            ReferenceCountUtil.release(msg);
        } else {
            ctx.fireChannelRead(msg);
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        readComplete();
        if (isDiscarding() && !ctx.channel().config().isAutoRead()) {
            ctx.read(); // nobody downstream asks for more while we wait for the peer's close_notify
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
