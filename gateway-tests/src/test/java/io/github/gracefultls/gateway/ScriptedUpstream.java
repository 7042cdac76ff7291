package io.github.gracefultls.gateway;

import io.github.gracefultls.testing.Tls;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.LastHttpContent;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * A TLS HTTP/1.1 upstream whose response is chosen by the request's path, {@code /<framing>/<end>}: a
 * {@link Framing} and an {@link End}. It writes the head and the body (all of it, or the first {@link #SENT} bytes
 * when cut), then ends the connection: with {@code close_notify} then FIN (clean), or with a bare FIN below TLS
 * (cut: the truncation the gateway must not pass on as a complete response).
 */
final class ScriptedUpstream implements AutoCloseable {

    static final int BODY_LENGTH = 100 * 1024;
    static final int SENT = BODY_LENGTH / 2;

    /** How the response's body is delimited. */
    enum Framing {
        CONTENT_LENGTH("Content-Length: " + BODY_LENGTH + "\r\n"),
        CLOSE_DELIMITED("");

        private final String header;

        Framing(String header) {
            this.header = header;
        }
    }

    /** How the upstream ends after writing. */
    enum End {
        CLEAN, CUT
    }

    private static final String WRITER = "raw-writer";

    private final Channel server;
    private final byte[] body;

    ScriptedUpstream(EventLoopGroup group, byte[] body) throws InterruptedException {
        this.body = body;
        server = new ServerBootstrap()
                .group(group)
                .channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3).newHandler(ch.alloc()));
                        // Writes from this context reach the SslHandler as they are, past the HTTP codec.
                        ch.pipeline().addLast(WRITER, new ChannelOutboundHandlerAdapter());
                        ch.pipeline().addLast(new HttpServerCodec());
                        ch.pipeline().addLast(new Responder());
                    }
                })
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))
                .sync()
                .channel();
    }

    static String path(Framing framing, End end) {
        return "/" + framing.name().toLowerCase(Locale.ROOT) + "/" + end.name().toLowerCase(Locale.ROOT);
    }

    String uri() {
        return "https://localhost:" + ((InetSocketAddress) server.localAddress()).getPort();
    }

    @Override
    public void close() throws InterruptedException {
        server.close().sync();
    }

    private final class Responder extends SimpleChannelInboundHandler<HttpObject> {
        private Framing framing;
        private End end;

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, HttpObject msg) {
            if (msg instanceof HttpRequest request) {
                String[] parts = request.uri().split("/");
                framing = Framing.valueOf(parts[1].toUpperCase(Locale.ROOT));
                end = End.valueOf(parts[2].toUpperCase(Locale.ROOT));
            }
            if (msg instanceof LastHttpContent) {
                String head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + framing.header
                        + "Connection: close\r\n\r\n";
                ByteBuf response = Unpooled.wrappedBuffer(head.getBytes(StandardCharsets.US_ASCII),
                        body).writerIndex(head.length() + (end == End.CUT ? SENT : BODY_LENGTH));
                ChannelFuture written = ctx.pipeline().context(WRITER).writeAndFlush(response);
                if (end == End.CLEAN) {
                    written.addListener(f -> ctx.channel().close()); // SslHandler: close_notify, then FIN
                } else {
                    // Past the SslHandler: a FIN without close_notify, once the bytes are on the wire.
                    written.addListener(f -> ctx.pipeline().firstContext().close());
                }
            }
        }
    }
}
