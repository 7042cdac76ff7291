package io.github.gracefultls.probe;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.PeerClosePolicy;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.LineBasedFrameDecoder;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ImmediateEventExecutor;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * A TLS server on loopback that closes the way its {@link Behaviour} says: the peers of the demo, and of the probe's
 * tests. Its event loop is the caller's; {@link #close()} closes the listening socket and every accepted channel.
 */
final class DemoServer implements AutoCloseable {

    /** How the server closes. */
    enum Behaviour {
        /** Answers the client's {@code close_notify} with its own, then closes ({@link PeerClosePolicy#CLOSE}). */
        ANSWER,
        /**
         * Answers the client's {@code close_notify} and keeps the transport as plaintext
         * ({@link PeerClosePolicy#REUSE_TRANSPORT}), then echoes every line it receives.
         */
        REUSE,
        /** Once its handshake is done, sends nothing more (its writes are dropped below its {@code SslHandler}) and
         *  never closes: a peer that never answers {@code close_notify}. */
        SILENT,
        /** On the client's {@code close_notify}, closes TCP below its {@code SslHandler} without answering: a FIN
         *  without {@code close_notify}, that is a truncation. */
        TRUNCATE
    }

    private final Channel serverChannel;
    private final ChannelGroup children;

    private DemoServer(Channel serverChannel, ChannelGroup children) {
        this.serverChannel = serverChannel;
        this.children = children;
    }

    /**
     * Binds a server to an ephemeral port on the loopback address.
     */
    static DemoServer start(EventLoopGroup group, SslContext sslContext, Behaviour behaviour)
            throws InterruptedException {
        ChannelGroup children = new DefaultChannelGroup(ImmediateEventExecutor.INSTANCE);
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(group)
                .channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        children.add(ch);
                        configure(ch, sslContext, behaviour);
                    }
                });
        Channel channel = bootstrap.bind(InetAddress.getLoopbackAddress(), 0).sync().channel();
        return new DemoServer(channel, children);
    }

    InetSocketAddress address() {
        return (InetSocketAddress) serverChannel.localAddress();
    }

    int port() {
        return address().getPort();
    }

    @Override
    public void close() {
        serverChannel.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
        children.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    }

    private static void configure(SocketChannel ch, SslContext sslContext, Behaviour behaviour) {
        ChannelPipeline p = ch.pipeline();
        SslHandler ssl = sslContext.newHandler(ch.alloc());
        switch (behaviour) {
            case ANSWER:
                ch.config().setAllowHalfClosure(true);
                p.addLast("ssl", ssl);
                p.addLast("tls-close", new GracefulTlsCloseHandler());
                p.addLast("app", new Discard());
                break;
            case REUSE:
                ch.config().setAllowHalfClosure(true);
                p.addLast("ssl", ssl);
                p.addLast("tls-close", GracefulTlsCloseHandler.builder()
                        .peerClosePolicy(PeerClosePolicy.REUSE_TRANSPORT)
                        .build());
                p.addLast("lines", new LineBasedFrameDecoder(1024));
                p.addLast("app", new EchoLines());
                break;
            case SILENT: {
                Muzzle muzzle = new Muzzle();
                p.addLast("muzzle", muzzle);
                p.addLast("ssl", ssl);
                p.addLast("app", new Discard());
                ssl.handshakeFuture().addListener(f -> muzzle.muted = f.isSuccess());
                break;
            }
            case TRUNCATE: {
                ch.config().setAllowHalfClosure(true);
                Muzzle muzzle = new Muzzle();
                p.addLast("muzzle", muzzle);
                p.addLast("ssl", ssl);
                p.addLast("truncate", new ChannelInboundHandlerAdapter() {
                    @Override
                    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                        if (evt instanceof SslCloseCompletionEvent && ((SslCloseCompletionEvent) evt).isSuccess()) {
                            muzzle.closeBelowTls();
                        }
                        ctx.fireUserEventTriggered(evt);
                    }
                });
                p.addLast("app", new Discard());
                ssl.handshakeFuture().addListener(f -> muzzle.muted = f.isSuccess());
                break;
            }
            default:
                throw new IllegalArgumentException(behaviour.name());
        }
    }

    /**
     * Sits below the {@code SslHandler}: once muted, drops everything written (the engine's own {@code close_notify}
     * reply included), and closes the transport without passing through the {@code SslHandler}.
     */
    private static final class Muzzle extends ChannelOutboundHandlerAdapter {
        volatile boolean muted;
        private ChannelHandlerContext ctx;

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            if (muted) {
                ReferenceCountUtil.release(msg);
                promise.trySuccess();
            } else {
                ctx.write(msg, promise);
            }
        }

        void closeBelowTls() {
            ctx.close();
        }
    }

    /** Releases what it reads and swallows exceptions: the server's view is not what the demo reports. */
    private static class Discard extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** Sends back every line it receives: after a transport reuse, in plaintext. */
    private static final class EchoLines extends Discard {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf line = (ByteBuf) msg;
            try {
                ctx.writeAndFlush(ctx.alloc().buffer(line.readableBytes() + 1).writeBytes(line).writeByte('\n'));
            } finally {
                line.release();
            }
        }
    }
}
