package io.github.gracefultls;

/**
 * What {@link GracefulTlsCloseHandler} does when the peer's {@code close_notify} arrives before this side began a
 * closure. In every case the {@link TlsCloseEvent} is fired first.
 */
public enum PeerClosePolicy {
    /**
     * Flushes what was written, makes sure our {@code close_notify} goes out (the JDK engine does not reply by
     * itself under TLS 1.3), then closes the transport. This is what RFC 5246 §7.2.1 asks of a TLS 1.2 peer.
     */
    CLOSE,
    /**
     * Does nothing more: the application may keep writing where the engine allows it (the JDK provider under
     * TLS 1.3, RFC 8446 §6.1) and closes the channel itself later. That close does not wait for the peer.
     */
    HALF_CLOSE,
    /**
     * Replies with {@code close_notify}, then removes the {@code SslHandler} and this handler: the channel stays open
     * as plaintext, and bytes that followed the peer's {@code close_notify} reach the next handler. Use it only for
     * protocols that define a return to plaintext (FTPS {@code CCC}, RFC 4511 §4.14.3 for LDAP): otherwise a peer
     * can force a downgrade.
     */
    REUSE_TRANSPORT
}
