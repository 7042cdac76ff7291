package io.github.gracefultls;

import javax.net.ssl.SSLException;

/**
 * The cause of a {@link TlsCloseStatus#TRUNCATED} outcome: the transport's input ended (FIN, RST or the channel
 * going inactive) before the peer's {@code close_notify}. A truncation at a record boundary is what a peer that
 * simply closes TCP produces; one inside a record means bytes of a record were cut off in transit.
 */
public final class TlsTruncationException extends SSLException {

    private static final long serialVersionUID = 1L;

    /** Bytes of an incomplete TLS record when the input ended: 0 at a record boundary, -1 if unknown. */
    private final int undecodedBytes;

    TlsTruncationException(String message, int undecodedBytes, Throwable cause) {
        super(message, cause);
        this.undecodedBytes = undecodedBytes;
    }

    /**
     * Creates one for a layer above TLS that reports where an unclean end cut its own message (the HTTP companion
     * module does). Its {@link #undecodedBytes()} are its cause's when the cause is a {@code TlsTruncationException}
     * (the {@link TlsCloseEvent#cause()} of a {@link TlsCloseStatus#TRUNCATED} outcome), else {@code -1}.
     *
     * @param message where the stream was cut, in the layer's terms
     * @param cause the cause of the unclean outcome, usually {@link TlsCloseEvent#cause()}; may be {@code null}
     */
    public TlsTruncationException(String message, Throwable cause) {
        this(message, cause instanceof TlsTruncationException ? ((TlsTruncationException) cause).undecodedBytes : -1,
                cause);
    }

    /**
     * Returns {@code true} when the input ended inside a TLS record: some bytes of a record had arrived, the rest
     * never did.
     *
     * @return whether the input ended inside a TLS record
     */
    public boolean isInsideRecord() {
        return undecodedBytes > 0;
    }

    /**
     * Returns how many bytes of an incomplete TLS record had arrived when the input ended: {@code 0} at a record
     * boundary, {@code -1} when the {@code SslHandler}'s buffer could not be inspected.
     *
     * @return the number of bytes of the incomplete record, {@code 0}, or {@code -1}
     */
    public int undecodedBytes() {
        return undecodedBytes;
    }
}
