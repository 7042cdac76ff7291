package io.github.gracefultls;

/**
 * The outcome of a TLS closure.
 */
public enum TlsCloseStatus {
    /** The peer's {@code close_notify} arrived, whichever side began: the stream ended cleanly. */
    CLOSE_NOTIFY_RECEIVED,
    /**
     * Our {@code close_notify} could not be flushed within the flush timeout, or the peer's {@code close_notify} did
     * not arrive within the read timeout ({@link TlsCloseMode#SHUT_RDWR}) or the half-close timeout
     * ({@link TlsCloseMode#SHUT_WR}).
     */
    TIMED_OUT,
    /**
     * The transport's input ended (FIN, RST, channel inactive) before the peer's {@code close_notify}. The receiver
     * cannot tell a normal end from an attacker cutting the stream, so the data received may be incomplete. The
     * event's {@link TlsCloseEvent#cause() cause} is a {@link TlsTruncationException} that says whether the input
     * ended at a TLS record boundary or inside a record.
     */
    TRUNCATED,
    /**
     * The closure failed locally or the TLS layer failed: the {@code close_notify} write failed, an
     * {@link javax.net.ssl.SSLException} was raised (for example a fatal alert), or a handler was removed from the
     * pipeline mid-close.
     */
    FAILED
}
