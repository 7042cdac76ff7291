package io.github.gracefultls;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;

/**
 * Follows the TLS record framing of the received bytes (record headers only; nothing is copied), for engines that
 * take partial records into their own buffers (OpenSSL), where the SslHandler's buffer is empty whatever was cut,
 * and for a FIN under half-closure, which the SslHandler hears of before this handler, after it released its
 * buffer. Reads whole headers and skips whole records: a read costs a few operations per record.
 *
 * <p>Set as the SslHandler's cumulator in front of its own, it sees every received buffer as the SslHandler takes
 * it, and adds nothing to the pipeline: no context, no hop on the read path. {@link TransportObserver} uses it
 * where the cumulator cannot be read.
 */
final class RecordFraming implements ByteToMessageDecoder.Cumulator, InputEndMeter {

    private static final int HEADER_LENGTH = 5;

    /** The SslHandler's own cumulator, or null when used by a TransportObserver. */
    private final ByteToMessageDecoder.Cumulator delegate;
    /** False when started after TLS bytes were received, or once a header did not look like one. */
    private boolean aligned;
    /** Bytes of a header split across reads received so far, 0 to 4. */
    private byte headerBytes;
    /** Body length of the current record; while its header is incomplete, the length's high byte. Unsigned. */
    private char recordLength;
    /** Body bytes of the current record still to come. Unsigned, as the record header's 16-bit length. */
    private char remaining;

    RecordFraming(ByteToMessageDecoder.Cumulator delegate, boolean aligned) {
        this.delegate = delegate;
        this.aligned = aligned;
    }

    /** Goes on from where {@code followed} is: for a framing followed before the SslHandler was in place. */
    RecordFraming(ByteToMessageDecoder.Cumulator delegate, RecordFraming followed) {
        this.delegate = delegate;
        aligned = followed.aligned;
        headerBytes = followed.headerBytes;
        recordLength = followed.recordLength;
        remaining = followed.remaining;
    }

    @Override
    public ByteBuf cumulate(ByteBufAllocator alloc, ByteBuf cumulation, ByteBuf in) {
        follow(in); // before the delegate, which takes over (and may release) the buffer
        return delegate.cumulate(alloc, cumulation, in);
    }

    /** The framing is unknown when it was not followed from the start: so is the answer then. */
    @Override
    public int partialRecordBytes(SslHandler ssl) {
        if (!aligned) {
            return -1;
        }
        return remaining > 0 ? HEADER_LENGTH + recordLength - remaining : headerBytes;
    }

    @Override
    public void detach(ChannelPipeline pipeline, SslHandler ssl) {
        if (delegate != null && SslHandlerAccess.cumulator(ssl) == this) {
            ssl.setCumulator(delegate);
        }
    }

    void follow(ByteBuf buf) {
        if (!aligned) {
            return;
        }
        int i = buf.readerIndex();
        final int end = buf.writerIndex();
        while (i < end) {
            if (remaining > 0) {
                int n = Math.min(remaining, end - i);
                remaining = (char) (remaining - n);
                i += n;
            } else if (headerBytes == 0 && end - i >= HEADER_LENGTH) {
                // A whole header: 1 byte content type, 2 bytes version, 2 bytes length.
                if (!isContentType(buf.getUnsignedByte(i))) {
                    aligned = false;
                    return;
                }
                recordLength = remaining = (char) buf.getUnsignedShort(i + 3);
                i += HEADER_LENGTH;
            } else {
                // A header split across reads, byte by byte.
                int b = buf.getUnsignedByte(i++);
                int at = headerBytes++;
                if (at == 0 && !isContentType(b)) {
                    aligned = false;
                    return;
                } else if (at == 3) {
                    recordLength = (char) b;
                } else if (at == 4) {
                    recordLength = remaining = (char) (recordLength << 8 | b);
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
