package io.github.gracefultls.interop;

import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.Transport;
import io.netty.handler.ssl.SslContext;

import java.util.stream.Stream;

/**
 * Our side of one cell of the matrix: TLS provider, protocol and Netty transport. Its {@code toString()}, e.g.
 * {@code "JDK TLSv1.3 EPOLL"}, names the cell in test names and in the report.
 */
record Cell(Tls.Provider provider, String protocol, Transport transport) {

    /** Every provider x protocol x transport: 12 cells. */
    static Stream<Cell> all() {
        Tls.assertOpenSslAvailable();
        return Stream.of(Tls.Provider.values()).flatMap(provider -> Tls.PROTOCOLS.stream()
                .flatMap(protocol -> Stream.of(Transport.values())
                        .map(transport -> new Cell(provider, protocol, transport))));
    }

    /** Every provider x protocol on one transport: 4 cells, where another transport would prove nothing new. */
    static Stream<Cell> nio() {
        return all().filter(c -> c.transport == Transport.NIO);
    }

    /** The one engine that can write after the peer's close_notify (JDK, TLS 1.3), on every transport. */
    static Stream<Cell> jdkTls13() {
        return all().filter(Cell::canWriteAfterPeerCloseNotify);
    }

    /** JDK TLS 1.3 neither replies close_notify by itself nor stops our output (the engine table of the SPEC). */
    boolean canWriteAfterPeerCloseNotify() {
        return provider == Tls.Provider.JDK && Tls.TLS_1_3.equals(protocol);
    }

    boolean isTls13() {
        return Tls.TLS_1_3.equals(protocol);
    }

    SslContext clientContext() {
        return Tls.clientContext(provider, protocol);
    }

    SslContext serverContext() {
        return Tls.serverContext(provider, protocol);
    }

    @Override
    public String toString() {
        return provider + " " + protocol + " " + transport;
    }
}
