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
 * open): sits right before the SslHandler and tells the owner that the transport's input is ending (FIN, an I/O
 * error, the channel going inactive) before the SslHandler hears of it, while its buffer still holds the bytes of
 * an incomplete record. This class does not override {@code channelRead}, so Netty never calls it for data;
 * {@link Following} does, to follow the record framing.
 */
class TransportObserver extends ChannelInboundHandlerAdapter implements InputEndWatcher {

    final GracefulTlsCloseHandler owner;

    TransportObserver(GracefulTlsCloseHandler owner) {
        this.owner = owner;
    }

    /** Here, the bytes the SslHandler holds undecoded. */
    @Override
    public int partialRecordBytes(SslHandler ssl) {
        return SslHandlerAccess.undecodedBytes(ssl);
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

    /** Also follows the record framing, on the read path. */
    static final class Following extends TransportObserver {

        private final RecordFraming framing;

        Following(GracefulTlsCloseHandler owner, boolean aligned) {
            super(owner);
            framing = new RecordFraming(null, aligned);
        }

        @Override
        public int partialRecordBytes(SslHandler ssl) {
            return framing.partialRecordBytes(ssl);
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
