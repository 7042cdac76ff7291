package io.github.gracefultls.examples.http;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.ssl.SslContext;

import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * An HTTP/1.1 reverse proxy, TLS on both sides, that never passes a cut upstream response on as a complete one.
 *
 * <p>A byte relay ({@code TlsCloseRelay}) cannot serve here: with HTTP codecs on both sides the proxy reads and
 * writes messages, and the client's connection outlives each response. What carries the verdict is the
 * {@link HttpTlsTruncationHandler} on the upstream side: when the upstream's TLS stream ends without
 * {@code close_notify} inside a response, the response's last content fails with a
 * {@code TlsTruncationException}. The proxy then passes on what did arrive and ends the client's connection with
 * {@link GracefulTlsCloseHandler#abort(Throwable)}: no final chunk, no {@code close_notify}, a TCP reset. A body the
 * upstream delimited by the end of its connection goes to the client chunked, so that the client, too, can tell
 * its end from a cut. The same holds the other way: a request body the client's stream cut is never completed
 * upstream.
 *
 * <p>Each client connection gets its own upstream connection, on its event loop; both read one HTTP object at a
 * time, the next once the previous is written (backpressure in the style of Netty's HexDumpProxy).
 */
public final class HttpReverseProxy {

    private final SslContext frontendTls;
    private final InetSocketAddress upstream;
    private final SslContext upstreamTls;

    /**
     * Creates a proxy.
     *
     * @param frontendTls the server context for clients
     * @param upstream the upstream's address
     * @param upstreamTls the client context for the upstream
     */
    public HttpReverseProxy(SslContext frontendTls, InetSocketAddress upstream, SslContext upstreamTls) {
        this.frontendTls = Objects.requireNonNull(frontendTls, "frontendTls");
        this.upstream = Objects.requireNonNull(upstream, "upstream");
        this.upstreamTls = Objects.requireNonNull(upstreamTls, "upstreamTls");
    }

    /**
     * Returns the initializer of client connections, for a {@code ServerBootstrap}'s child handler.
     *
     * @return a shareable initializer
     */
    public ChannelInitializer<Channel> frontendInitializer() {
        return new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                ch.config().setAutoRead(false); // one object at a time: see HttpProxyFrontendHandler
                ch.pipeline().addLast("ssl", frontendTls.newHandler(ch.alloc()))
                        .addLast("tls-close", new GracefulTlsCloseHandler())
                        .addLast("http", new HttpServerCodec())
                        .addLast("http-tls-truncation", new HttpTlsTruncationHandler())
                        .addLast("proxy", new HttpProxyFrontendHandler(HttpReverseProxy.this));
            }
        };
    }

    /** Connects the upstream for one client connection, on its event loop. */
    ChannelFuture connectUpstream(Channel frontend, HttpProxyBackendHandler backend) {
        return new Bootstrap().group(frontend.eventLoop())
                .channel(frontend instanceof EpollSocketChannel ? EpollSocketChannel.class : NioSocketChannel.class)
                .option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 10_000)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast("ssl", upstreamTls.newHandler(ch.alloc(), upstream.getHostString(),
                                        upstream.getPort()))
                                .addLast("tls-close", new GracefulTlsCloseHandler())
                                .addLast("http", new HttpClientCodec())
                                .addLast("http-tls-truncation", new HttpTlsTruncationHandler())
                                .addLast("proxy", backend);
                    }
                })
                .connect(upstream);
    }

    /** Removes the hop-by-hop headers (RFC 9110, section 7.6.1), but the framing the codecs keep consistent. */
    static void removeHopByHop(HttpHeaders headers) {
        for (String named : headers.getAll(HttpHeaderNames.CONNECTION)) {
            for (String name : named.split(",")) {
                headers.remove(name.trim());
            }
        }
        headers.remove(HttpHeaderNames.CONNECTION).remove(HttpHeaderNames.KEEP_ALIVE)
                .remove(HttpHeaderNames.PROXY_CONNECTION).remove(HttpHeaderNames.TE)
                .remove(HttpHeaderNames.TRAILER).remove(HttpHeaderNames.UPGRADE);
    }

    /** Ends a connection as cut: without close_notify, with a reset. */
    static void abort(Channel ch, Throwable cause) {
        GracefulTlsCloseHandler tlsClose = ch.pipeline().get(GracefulTlsCloseHandler.class);
        if (tlsClose != null) {
            tlsClose.abort(cause);
        } else {
            ch.close();
        }
    }
}
