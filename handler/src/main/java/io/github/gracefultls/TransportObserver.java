package io.github.gracefultls;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;

import javax.net.ssl.SSLException;
import java.io.IOException;

/**
 * Sits right before the {@code SslHandler} and follows the TLS record framing of the received bytes (5-byte headers
 * and lengths only, nothing is copied), so that when the transport's input ends (FIN, an I/O error, the channel
 * going inactive) a truncation can say whether it cut a record. The TLS engines cannot tell: OpenSSL keeps a partial
 * record in its own buffer.
 */
final class TransportObserver extends ChannelInboundHandlerAdapter {

    private static final int HEADER_LENGTH = 5;

    private final GracefulTlsCloseHandler owner;
    /** False when added after TLS bytes were received, or once a header did not look like one: framing unknown. */
    private boolean aligned;
    /** Bytes of the current record (header included) received so far; 0 at a record boundary. */
    private int received;
    /** Body bytes of the current record still to come; -1 while its header is incomplete. */
    private int bodyRemaining = -1;
    private int lengthHighByte;

    TransportObserver(GracefulTlsCloseHandler owner, boolean aligned) {
        this.owner = owner;
        this.aligned = aligned;
    }

    /** Bytes of an incomplete record received so far: 0 at a record boundary, -1 if unknown. */
    int partialRecordBytes() {
        return aligned ? received : -1;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (aligned && msg instanceof ByteBuf) {
            follow((ByteBuf) msg);
        }
        ctx.fireChannelRead(msg);
    }

    private void follow(ByteBuf buf) {
        int i = buf.readerIndex();
        final int end = buf.writerIndex();
        while (i < end) {
            if (bodyRemaining > 0) {
                int n = Math.min(bodyRemaining, end - i);
                bodyRemaining -= n;
                i += n;
                received = bodyRemaining == 0 ? 0 : received + n;
                if (bodyRemaining == 0) {
                    bodyRemaining = -1;
                }
                continue;
            }
            // Inside a header: 1 byte type, 2 bytes version, 2 bytes length.
            received++;
            if (received == 1) {
                short type = buf.getUnsignedByte(i);
                if (type < 20 || type > 24) {
                    // Not a TLS record (plaintext after a closure, or framing lost): stop following.
                    aligned = false;
                    received = 0;
                    return;
                }
            } else if (received == HEADER_LENGTH - 1) {
                lengthHighByte = buf.getUnsignedByte(i);
            } else if (received == HEADER_LENGTH) {
                bodyRemaining = lengthHighByte << 8 | buf.getUnsignedByte(i);
                if (bodyRemaining == 0) {
                    bodyRemaining = -1;
                    received = 0;
                }
            }
            i++;
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
}
