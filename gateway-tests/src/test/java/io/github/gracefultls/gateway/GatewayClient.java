package io.github.gracefultls.gateway;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.github.gracefultls.testing.Tls;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The gateway's client: a Netty HTTP/1.1 client over TLS with {@link GracefulTlsCloseHandler},
 * {@link HttpTlsTruncationHandler} after its codec and an aggregator, as an application that reads whole responses
 * would have. It sends one GET and reports what it received.
 */
final class GatewayClient {

    /** What the client received: a complete response or not, its body, and how the gateway ended TLS. */
    record Received(boolean complete, String failure, int status, byte[] body, TlsCloseEvent tls) {
        @Override
        public String toString() {
            return (complete ? "complete" : "not complete (" + failure + ")") + ", status " + status + ", "
                    + (body == null ? "no body" : body.length + " body bytes") + ", client TLS " + tls;
        }
    }

    private GatewayClient() {
    }

    static Received get(EventLoopGroup group, int port, String path, Duration bound) throws Exception {
        CompletableFuture<Received> result = new CompletableFuture<>();
        GracefulTlsCloseHandler tlsClose = new GracefulTlsCloseHandler();
        Channel ch = new Bootstrap()
                .group(group)
                .channel(NioSocketChannel.class)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3)
                                .newHandler(ch.alloc(), "localhost", port));
                        ch.pipeline().addLast(tlsClose);
                        ch.pipeline().addLast(new HttpClientCodec());
                        ch.pipeline().addLast(new HttpTlsTruncationHandler());
                        ch.pipeline().addLast(new HttpObjectAggregator(4 * ScriptedUpstream.BODY_LENGTH));
                        ch.pipeline().addLast(new SimpleChannelInboundHandler<FullHttpResponse>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse msg) {
                                boolean ok = msg.decoderResult().isSuccess();
                                result.complete(new Received(ok, ok ? null : String.valueOf(msg.decoderResult()
                                        .cause()), msg.status().code(), ByteBufUtil.getBytes(msg.content()), null));
                            }

                            @Override
                            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                result.complete(new Received(false, cause.toString(), 0, null, null));
                                ctx.close();
                            }

                            @Override
                            public void channelInactive(ChannelHandlerContext ctx) {
                                result.complete(new Received(false, "closed without a response", 0, null, null));
                            }
                        });
                    }
                })
                .connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port))
                .sync()
                .channel();
        FullHttpRequest request = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path);
        request.headers().set(HttpHeaderNames.HOST, "localhost:" + port);
        ch.writeAndFlush(request);
        Received received = result.get(bound.toNanos(), TimeUnit.NANOSECONDS);
        ch.close(); // joins the closure if the gateway began it
        TlsCloseEvent tls = tlsClose.closeFuture().get(bound.toNanos(), TimeUnit.NANOSECONDS);
        ch.closeFuture().await(bound.toNanos(), TimeUnit.NANOSECONDS);
        return new Received(received.complete(), received.failure(), received.status(), received.body(), tls);
    }
}
