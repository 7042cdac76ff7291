/**
 * TLS closure for Netty with the semantics of GnuTLS's {@code gnutls_bye()}: {@link
 * io.github.gracefultls.GracefulTlsCloseHandler} sends {@code close_notify}, waits for the peer's,
 * and reports whether the stream ended cleanly, timed out, or was truncated.
 */
package io.github.gracefultls;
