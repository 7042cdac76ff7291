package io.github.gracefultls.interop;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;

import java.util.ArrayList;
import java.util.List;

/**
 * First in the pipeline: copies every raw read from the transport (TLS records, or plaintext after a transport reuse)
 * and passes it on untouched. Shows what arrived in one read, e.g. the peer's close_notify and plaintext together.
 */
final class WireTap extends ChannelInboundHandlerAdapter {

    private final List<byte[]> reads = new ArrayList<>();

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof ByteBuf) {
            ByteBuf buf = (ByteBuf) msg;
            byte[] copy = ByteBufUtil.getBytes(buf, buf.readerIndex(), buf.readableBytes());
            synchronized (this) {
                reads.add(copy);
            }
        }
        ctx.fireChannelRead(msg);
    }

    /** Every raw read so far, in order. */
    synchronized List<byte[]> reads() {
        return List.copyOf(reads);
    }
}
