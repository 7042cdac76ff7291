/**
 * {@link io.github.gracefultls.GracefulTlsCloseHandler} in Reactor Netty 1.3:
 * {@link io.github.gracefultls.reactor.ReactorNettyTlsClose} wires it into {@code HttpServer}, {@code HttpClient},
 * {@code TcpServer} and {@code TcpClient}, and gives each connection's
 * {@link io.github.gracefultls.reactor.TlsClosure}.
 */
package io.github.gracefultls.reactor;
