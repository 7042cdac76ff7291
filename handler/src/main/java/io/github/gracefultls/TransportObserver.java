package io.github.gracefultls;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandler;

import javax.net.ssl.SSLException;
import java.io.IOException;

/**
 * Sits right before the {@code SslHandler} and tells the owner that the transport's input is ending (FIN, an I/O
 * error, the channel going inactive) before the {@code SslHandler} hears of it, while its buffer still holds the
 * bytes of an incomplete record. This class is off the read path: it does not override {@code channelRead}, so
 * Netty never calls it for data. {@link RecordFraming} also follows the record framing, for engines that keep
 * partial records in their own buffers.
 */
class TransportObserver extends ChannelInboundHandlerAdapter {

    final GracefulTlsCloseHandler owner;

    TransportObserver(GracefulTlsCloseHandler owner) {
        this.owner = owner;
    }

    /**
     * Returns the bytes of an incomplete record received so far: 0 at a record boundary, -1 if unknown. Here they are
     * the bytes the SslHandler holds undecoded.
     */
    int partialRecordBytes(SslHandler ssl) {
        return SslHandlerAccess.undecodedBytes(ssl);
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

    /**
     * Also follows the TLS record framing of the received bytes (record headers only; nothing is copied), for
     * engines that take partial records into their own buffers (OpenSSL), where the {@code SslHandler}'s buffer is
     * empty whatever was cut. Reads whole headers and skips whole records, so a read costs a few operations per
     * record.
     */
    static final class RecordFraming extends TransportObserver {

        private static final int HEADER_LENGTH = 5;

        /** False when added after TLS bytes were received, or once a header did not look like one. */
        private boolean aligned;
        /** Bytes of a header split across reads received so far, 0 to 4. */
        private byte headerBytes;
        /** Body length of the current record; while its header is incomplete, the length's high byte. */
        private int recordLength;
        /** Body bytes of the current record still to come. */
        private int remaining;

        RecordFraming(GracefulTlsCloseHandler owner, boolean aligned) {
            super(owner);
            this.aligned = aligned;
        }

        /** The SslHandler's buffer says nothing here: if the framing is unknown, so is the answer. */
        @Override
        int partialRecordBytes(SslHandler ssl) {
            if (!aligned) {
                return -1;
            }
            return remaining > 0 ? HEADER_LENGTH + recordLength - remaining : headerBytes;
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
                if (remaining > 0) {
                    int n = Math.min(remaining, end - i);
                    remaining -= n;
                    i += n;
                } else if (headerBytes == 0 && end - i >= HEADER_LENGTH) {
                    // A whole header: 1 byte content type, 2 bytes version, 2 bytes length.
                    if (!isContentType(buf.getUnsignedByte(i))) {
                        aligned = false;
                        return;
                    }
                    recordLength = remaining = buf.getUnsignedShort(i + 3);
                    i += HEADER_LENGTH;
                } else {
                    // A header split across reads, byte by byte.
                    int b = buf.getUnsignedByte(i++);
                    int at = headerBytes++;
                    if (at == 0 && !isContentType(b)) {
                        aligned = false;
                        return;
                    } else if (at == 3) {
                        recordLength = b;
                    } else if (at == 4) {
                        recordLength = remaining = recordLength << 8 | b;
                        headerBytes = 0;
                    }
                }
            }
        }

        /** Plaintext after a closure, or framing lost, is not a TLS record: the framing is then unknown. */
        private static boolean isContentType(int type) {
            return type >= 20 && type <= 24;
        }
    }
}
