package io.github.gracefultls;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandler;

import javax.net.ssl.SSLException;
import java.io.IOException;

/**
 * The fallback where the SslHandler's cumulator cannot be read (on the module path, Netty 4.2's codec module is not
 * open), or where the framing cannot be followed from the first byte: sits right before the SslHandler and counts
 * the bytes the SslHandler holds undecoded when the transport's input ends (FIN, an I/O error, the channel going
 * inactive), before the SslHandler hears of it and releases them. The first count stands. This class does not
 * override {@code channelRead}, so Netty never calls it for data; {@link Following} does, to follow the framing.
 */
class TransportObserver extends ChannelInboundHandlerAdapter implements InputEndMeter {

    private static final int UNCOUNTED = Integer.MIN_VALUE;

    private final SslHandler ssl;
    private int partialAtEnd = UNCOUNTED;

    TransportObserver(SslHandler ssl) {
        this.ssl = ssl;
    }

    /** The count taken when the input ended, or what the SslHandler holds now. */
    @Override
    public int partialRecordBytes(SslHandler ssl) {
        return partialAtEnd != UNCOUNTED ? partialAtEnd : count();
    }

    boolean observes(SslHandler ssl) {
        return this.ssl == ssl;
    }

    /** Here, the bytes the SslHandler holds undecoded. */
    int count() {
        return SslHandlerAccess.undecodedBytes(ssl);
    }

    private void inputEnding() {
        if (partialAtEnd == UNCOUNTED) {
            partialAtEnd = count();
        }
    }

    @Override
    public void detach(ChannelPipeline pipeline, SslHandler ssl) {
        if (pipeline.context(this) != null) {
            pipeline.remove(this);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof ChannelInputShutdownEvent) {
            inputEnding();
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) throws Exception {
        if (cause instanceof IOException && !(cause instanceof SSLException)) {
            inputEnding();
        }
        ctx.fireExceptionCaught(cause);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        inputEnding();
        ctx.fireChannelInactive();
    }

    /** Also follows the record framing, on the read path. */
    static class Following extends TransportObserver {

        final RecordFraming framing;

        Following(SslHandler ssl, boolean aligned) {
            super(ssl);
            framing = new RecordFraming(null, aligned);
        }

        @Override
        int count() {
            return framing.partialRecordBytes(null);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf) {
                framing.follow((ByteBuf) msg);
            }
            ctx.fireChannelRead(msg);
        }
    }
}
