package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

import static java.util.concurrent.TimeUnit.SECONDS;

/**
 * Real loopback TLS connections for the fault tests: "our" client channel ({@code SslHandler},
 * {@link GracefulTlsCloseHandler}, {@link RecordingHandler}) and a Netty peer whose first handler, a {@link Wire},
 * sits below the peer's {@code SslHandler} and can go deaf, cork, inject raw bytes, send a FIN or a reset.
 */
final class FaultRig implements AutoCloseable {

    static final long AWAIT_SECONDS = 10;

    /** A socket transport. */
    enum Transport {
        NIO, EPOLL;

        EventLoopGroup newGroup(int threads) {
            if (this == EPOLL) {
                Epoll.ensureAvailability();
                return new MultiThreadIoEventLoopGroup(threads, EpollIoHandler.newFactory());
            }
            return new MultiThreadIoEventLoopGroup(threads, NioIoHandler.newFactory());
        }

        Class<? extends ServerChannel> serverChannelClass() {
            return this == EPOLL ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
        }

        Class<? extends Channel> channelClass() {
            return this == EPOLL ? EpollSocketChannel.class : NioSocketChannel.class;
        }
    }

    /** How our side ends the TLS session, or {@code PEER} when the peer begins. */
    enum Op {
        CLOSE, BYE_RDWR, SHUTDOWN_OUTPUT, PEER;

        static final Op[] LOCAL = {CLOSE, BYE_RDWR, SHUTDOWN_OUTPUT};
    }

    final Transport transport;
    final EventLoopGroup group;
    private final Deque<AutoCloseable> resources = new ArrayDeque<>();

    FaultRig(Transport transport, int threads) {
        this.transport = transport;
        this.group = transport.newGroup(threads);
    }

    @Override
    public void close() throws Exception {
        try {
            while (!resources.isEmpty()) {
                resources.pop().close();
            }
        } finally {
            group.shutdownGracefully(0, 2, SECONDS).await(AWAIT_SECONDS, SECONDS);
        }
    }

    // ---- our side

    static final class Client {
        final Channel channel;
        final GracefulTlsCloseHandler handler;
        final RecordingHandler rec;

        Client(Channel channel, GracefulTlsCloseHandler handler, RecordingHandler rec) {
            this.channel = channel;
            this.handler = handler;
            this.rec = rec;
        }

        SslHandler ssl() {
            return channel.pipeline().get(SslHandler.class);
        }

        /** Starts {@code op} from this thread; returns the future of the TLS closure. */
        Future<TlsCloseEvent> start(Op op) {
            switch (op) {
                case CLOSE:
                    channel.close();
                    return handler.closeFuture();
                case BYE_RDWR:
                    return handler.bye(TlsCloseMode.SHUT_RDWR);
                case SHUTDOWN_OUTPUT:
                    return handler.shutdownOutput();
                default:
                    return handler.closeFuture();
            }
        }
    }

    Client connect(SslProvider provider, String protocol, SocketAddress address, GracefulTlsCloseHandler handler,
                   Consumer<Bootstrap> options) throws Exception {
        RecordingHandler rec = RecordingHandler.swallowingExceptions();
        Bootstrap b = new Bootstrap()
                .group(group)
                .channel(transport.channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast("ssl", Tls.clientContext(provider, protocol).newHandler(ch.alloc()));
                        ch.pipeline().addLast("tls-close", handler);
                        ch.pipeline().addLast("rec", rec);
                    }
                });
        if (options != null) {
            options.accept(b);
        }
        ChannelFuture connect = b.connect(address);
        Channel channel = connect.channel();
        resources.push(() -> forceClose(channel));
        connect.get(AWAIT_SECONDS, SECONDS);
        channel.pipeline().get(SslHandler.class).handshakeFuture().get(AWAIT_SECONDS, SECONDS);
        return new Client(channel, handler, rec);
    }

    // ---- the peer

    static final class Peer {
        final Channel server;
        final CompletableFuture<Channel> accepted = new CompletableFuture<>();
        final Wire wire = new Wire();
        final RecordingHandler rec = RecordingHandler.swallowingExceptions();

        Peer(Channel server) {
            this.server = server;
        }

        SocketAddress address() {
            return server.localAddress();
        }

        Channel awaitHandshake() throws Exception {
            Channel ch = accepted.get(AWAIT_SECONDS, SECONDS);
            ch.pipeline().get(SslHandler.class).handshakeFuture().get(AWAIT_SECONDS, SECONDS);
            return ch;
        }

        Channel channel() {
            return accepted.getNow(null);
        }

        SslHandler ssl() {
            return channel().pipeline().get(SslHandler.class);
        }
    }

    /**
     * A peer accepting one connection: {@link Wire}, {@code SslHandler}, optionally {@code tlsClose}, recorder.
     */
    Peer startPeer(SslProvider provider, String protocol, GracefulTlsCloseHandler tlsClose,
                   Consumer<ServerBootstrap> options) throws Exception {
        Peer[] holder = new Peer[1];
        ServerBootstrap b = new ServerBootstrap()
                .group(group)
                .channel(transport.serverChannelClass())
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        Peer peer = holder[0];
                        if (peer.accepted.isDone()) {
                            ch.close();
                            return;
                        }
                        ch.pipeline().addLast("wire", peer.wire);
                        ch.pipeline().addLast("ssl", Tls.serverContext(provider, protocol).newHandler(ch.alloc()));
                        if (tlsClose != null) {
                            ch.pipeline().addLast("tls-close", tlsClose);
                        }
                        ch.pipeline().addLast("rec", peer.rec);
                        peer.accepted.complete(ch);
                    }
                });
        if (options != null) {
            options.accept(b);
        }
        ChannelFuture bind = b.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        Peer peer = new Peer(bind.channel());
        holder[0] = peer;
        resources.push(() -> {
            Channel ch = peer.accepted.getNow(null);
            if (ch != null) {
                forceClose(ch);
            }
            peer.wire.releaseCork();
        });
        resources.push(() -> peer.server.close().await(AWAIT_SECONDS, SECONDS));
        bind.get(AWAIT_SECONDS, SECONDS);
        return peer;
    }

    /**
     * The peer's first handler, next to the transport, below its TLS. It records the raw bytes it reads, can go
     * deaf (release inbound bytes unread, running an action at the first of them), cork the output (hold writes
     * and send them later as one buffer, one TCP segment), inject raw bytes, send a FIN or a reset.
     * Used on the peer's event loop.
     */
    static final class Wire extends ChannelDuplexHandler {
        volatile ChannelHandlerContext ctx;
        final AtomicLong deafBytes = new AtomicLong();
        private final ByteArrayOutputStream rawIn = new ByteArrayOutputStream();
        private volatile boolean deaf;
        private Consumer<ChannelHandlerContext> onFirstDeafRead;
        private CompositeByteBuf cork;

        /** From now on releases inbound bytes unread; runs {@code action} (may be null) at the first of them. */
        void deafThen(Consumer<ChannelHandlerContext> action) {
            onFirstDeafRead = action;
            deaf = true;
        }

        synchronized byte[] rawIn() {
            return rawIn.toByteArray();
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf) {
                ByteBuf buf = (ByteBuf) msg;
                synchronized (this) {
                    rawIn.writeBytes(io.netty.buffer.ByteBufUtil.getBytes(buf));
                }
            }
            if (!deaf) {
                ctx.fireChannelRead(msg);
                return;
            }
            if (msg instanceof ByteBuf) {
                deafBytes.addAndGet(((ByteBuf) msg).readableBytes());
            }
            ReferenceCountUtil.release(msg);
            Consumer<ChannelHandlerContext> action = onFirstDeafRead;
            onFirstDeafRead = null;
            if (action != null) {
                action.accept(ctx);
            }
        }

        /** Holds every later write until {@link #uncork()}. */
        void cork() {
            cork = ctx.alloc().compositeBuffer(1024);
        }

        /** Sends what was held as one buffer. */
        ChannelFuture uncork() {
            CompositeByteBuf held = cork;
            cork = null;
            return ctx.writeAndFlush(held);
        }

        /** Sends what was held twice, e.g. a close_notify and its replay. */
        ChannelFuture uncorkTwice() {
            CompositeByteBuf held = cork;
            cork = null;
            ctx.write(held.retainedDuplicate());
            return ctx.writeAndFlush(held);
        }

        /** Waits until the deaf wire dropped some bytes (our close_notify). */
        void awaitDeafBytes() throws InterruptedException {
            long deadline = System.nanoTime() + SECONDS.toNanos(AWAIT_SECONDS);
            while (deafBytes.get() == 0) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("no bytes reached the deaf peer");
                }
                synchronized (this) {
                    wait(10);
                }
            }
        }

        void releaseCork() {
            CompositeByteBuf held = cork;
            cork = null;
            if (held != null && held.refCnt() > 0) {
                held.release();
            }
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            if (cork != null && msg instanceof ByteBuf) {
                cork.addComponent(true, (ByteBuf) msg);
                promise.trySuccess();
                return;
            }
            ctx.write(msg, promise);
        }

        /** Writes raw bytes below TLS. */
        ChannelFuture writeRaw(byte[] bytes) {
            return ctx.writeAndFlush(Unpooled.wrappedBuffer(bytes));
        }

        /** TCP FIN below TLS (no close_notify). */
        void fin() {
            ((DuplexChannel) ctx.channel()).shutdownOutput();
        }

        /** TCP reset (SO_LINGER 0, then close below TLS). */
        void reset() {
            ctx.channel().config().setOption(ChannelOption.SO_LINGER, 0);
            ctx.close();
        }
    }

    // ---- helpers

    static <T> T onEventLoop(Channel ch, Callable<T> task) throws Exception {
        return ch.eventLoop().submit(task).get(AWAIT_SECONDS, SECONDS);
    }

    static void runOnEventLoop(Channel ch, Runnable task) throws Exception {
        ch.eventLoop().submit(task).get(AWAIT_SECONDS, SECONDS);
    }

    /** Closes at the head of the pipeline, past every handler. For clean-up. */
    static void forceClose(Channel ch) throws InterruptedException {
        ChannelHandlerContext first = ch.pipeline().firstContext();
        if (first != null) {
            first.close();
        } else {
            ch.close();
        }
        ch.closeFuture().await(AWAIT_SECONDS, TimeUnit.SECONDS);
    }

    static byte[] payload(int length) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) (i % 251);
        }
        return bytes;
    }
}
