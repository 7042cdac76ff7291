/**
 * TLS closure for Netty with the semantics of GnuTLS's {@code gnutls_bye()}: see {@link
 * io.github.gracefultls.GracefulTlsCloseHandler}. Exports the one public package; its helpers stay package-private.
 *
 * <p>The Netty modules it requires have the same names on Netty 4.1 (automatic modules) and Netty 4.2 (explicit
 * modules, where {@code io.netty.codec} is the {@code netty-codec-base} jar).
 */
module io.github.gracefultls {
    requires transitive io.netty.common;
    requires transitive io.netty.transport;
    requires io.netty.buffer;
    requires io.netty.codec;
    requires io.netty.handler;

    exports io.github.gracefultls;
}
