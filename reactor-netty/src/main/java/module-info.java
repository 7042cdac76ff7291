/**
 * {@link io.github.gracefultls.GracefulTlsCloseHandler} in Reactor Netty: see
 * {@link io.github.gracefultls.reactor.ReactorNettyTlsClose}.
 *
 * <p>Reactor Netty's jars are automatic modules ({@code reactor.netty.core}, {@code reactor.netty.http},
 * {@code reactor.core}).
 */
module io.github.gracefultls.reactor {
    requires transitive io.github.gracefultls;
    requires io.github.gracefultls.http;
    requires transitive reactor.netty.core;
    requires transitive reactor.netty.http;
    requires transitive reactor.core;
    requires io.netty.codec;
    requires io.netty.codec.http;
    requires io.netty.handler;

    exports io.github.gracefultls.reactor;
}
