package io.github.gracefultls;

/**
 * How a local TLS closure is carried out, after the {@code how} argument of GnuTLS's {@code gnutls_bye()}.
 */
public enum TlsCloseMode {
    /**
     * Sends {@code close_notify}, then waits for the peer's {@code close_notify}. Application data that arrives
     * during the wait is released unread. On a clean outcome the transport may be reused.
     */
    SHUT_RDWR,
    /**
     * Sends {@code close_notify} and keeps reading: the peer may go on sending application data until its own
     * {@code close_notify} (a TLS half-close, RFC 8446 §6.1).
     */
    SHUT_WR
}
