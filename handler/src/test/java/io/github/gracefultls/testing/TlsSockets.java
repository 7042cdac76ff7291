package io.github.gracefultls.testing;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Real loopback TLS connections for socket tests, on a given event loop group and transport: "our" client channel
 * ({@code SslHandler}, {@link GracefulTlsCloseHandler}, {@link RecordingHandler}) and a Netty peer that accepts one
 * connection ({@link Wire} below its {@code SslHandler}, optionally its own {@code GracefulTlsCloseHandler}, a
 * recorder). Every channel has {@link ChannelOption#ALLOW_HALF_CLOSURE} on, so that a FIN is seen as such. What they
 * open is closed by {@link #close()}, below TLS; the event loop group stays the caller's.
 */
public final class TlsSockets implements AutoCloseable {

    private final EventLoopGroup group;
    private final Class<? extends Channel> channelClass;
    private final Class<? extends ServerChannel> serverChannelClass;
    private final Duration await;
    private final Resources resources = new Resources();

    /** {@code await} bounds every wait here: connect, handshake, bind, accept, close. */
    public TlsSockets(EventLoopGroup group, Class<? extends Channel> channelClass,
                      Class<? extends ServerChannel> serverChannelClass, Duration await) {
        this.group = group;
        this.channelClass = channelClass;
        this.serverChannelClass = serverChannelClass;
        this.await = await;
    }

    public EventLoopGroup group() {
        return group;
    }

    /** Registers {@code resource} to be closed by {@link #close()}, before what was opened earlier; returns it. */
    public <T extends AutoCloseable> T closeAfter(T resource) {
        return resources.add(resource);
    }

    /** Closes every channel and resource opened so far, last opened first. */
    @Override
    public void close() throws Exception {
        resources.close();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our side
    // ------------------------------------------------------------------------------------------------------------

    /** Our client channel: {@code ssl}, {@code tls-close} and {@code rec} in its pipeline. */
    public static final class Client {
        public final Channel channel;
        public final GracefulTlsCloseHandler handler;
        public final RecordingHandler rec;

        public Client(Channel channel, GracefulTlsCloseHandler handler, RecordingHandler rec) {
            this.channel = channel;
            this.handler = handler;
            this.rec = rec;
        }

        public SslHandler ssl() {
            return channel.pipeline().get(SslHandler.class);
        }

        /** The channel's TLS closure, whoever begins it; fails after {@code bound}. */
        public TlsCloseEvent awaitEvent(Duration bound) throws Exception {
            return handler.closeFuture().get(bound.toNanos(), TimeUnit.NANOSECONDS);
        }
    }

    /** Connects our client and waits for its handshake. */
    public Client connect(SslContext context, SocketAddress address, GracefulTlsCloseHandler handler,
                          RecordingHandler rec) throws Exception {
        return connect(context, address, handler, rec, null);
    }

    /** Connects our client and waits for its handshake; {@code options} (may be null) adjusts the bootstrap. */
    public Client connect(SslContext context, SocketAddress address, GracefulTlsCloseHandler handler,
                          RecordingHandler rec, Consumer<Bootstrap> options) throws Exception {
        Bootstrap b = new Bootstrap()
                .group(group)
                .channel(channelClass)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast("ssl", context.newHandler(ch.alloc()));
                        ch.pipeline().addLast("tls-close", handler);
                        ch.pipeline().addLast("rec", rec);
                    }
                });
        if (options != null) {
            options.accept(b);
        }
        ChannelFuture connect = b.connect(address);
        Channel channel = connect.channel();
        closeAfter(() -> closeBelowTls(channel, await));
        connect.get(await.toNanos(), TimeUnit.NANOSECONDS);
        channel.pipeline().get(SslHandler.class).handshakeFuture().get(await.toNanos(), TimeUnit.NANOSECONDS);
        return new Client(channel, handler, rec);
    }

    // ------------------------------------------------------------------------------------------------------------
    // The peer
    // ------------------------------------------------------------------------------------------------------------

    /** A Netty server on 127.0.0.1 that accepts one connection; later ones are closed at once. */
    public final class Peer {
        public final Channel server;
        public final Wire wire = new Wire();
        public final RecordingHandler rec;
        private final CompletableFuture<Channel> accepted = new CompletableFuture<>();

        private Peer(Channel server, RecordingHandler rec) {
            this.server = server;
            this.rec = rec;
        }

        public SocketAddress address() {
            return server.localAddress();
        }

        /** The accepted connection; fails if none comes in time. */
        public Channel awaitAccepted() throws Exception {
            return accepted.get(await.toNanos(), TimeUnit.NANOSECONDS);
        }

        /** The accepted connection, once its handshake is over. */
        public Channel awaitHandshake() throws Exception {
            Channel ch = awaitAccepted();
            ch.pipeline().get(SslHandler.class).handshakeFuture().get(await.toNanos(), TimeUnit.NANOSECONDS);
            return ch;
        }

        /** The accepted connection, or null. */
        public Channel channel() {
            return accepted.getNow(null);
        }

        public SslHandler ssl() {
            return channel().pipeline().get(SslHandler.class);
        }
    }

    /**
     * Starts a peer: {@code wire}, then, with a {@code context}, {@code ssl} and {@code tls-close} (if not null),
     * then {@code rec}. Without a {@code context} it is a plain TCP peer. {@code options} (may be null) adjusts the
     * bootstrap.
     */
    public Peer listen(SslContext context, GracefulTlsCloseHandler tlsClose, RecordingHandler rec,
                       Consumer<ServerBootstrap> options) throws Exception {
        Peer[] peer = new Peer[1];
        ServerBootstrap b = new ServerBootstrap()
                .group(group)
                .channel(serverChannelClass)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        Peer p = peer[0];
                        if (p.accepted.isDone()) {
                            ch.close();
                            return;
                        }
                        closeAfter(() -> closeBelowTls(ch, await));
                        ch.pipeline().addLast("wire", p.wire);
                        if (context != null) {
                            ch.pipeline().addLast("ssl", context.newHandler(ch.alloc()));
                            if (tlsClose != null) {
                                ch.pipeline().addLast("tls-close", tlsClose);
                            }
                        }
                        ch.pipeline().addLast("rec", p.rec);
                        p.accepted.complete(ch);
                    }
                });
        if (options != null) {
            options.accept(b);
        }
        ChannelFuture bind = b.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        peer[0] = new Peer(bind.channel(), rec);
        closeAfter(peer[0].wire::releaseCork);
        closeAfter(() -> bind.channel().close().await(await.toNanos(), TimeUnit.NANOSECONDS));
        bind.get(await.toNanos(), TimeUnit.NANOSECONDS);
        return peer[0];
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    /** Closes at the head of the pipeline, past every handler: no close_notify, no wait for one. */
    public static void closeBelowTls(Channel ch, Duration bound) throws InterruptedException {
        ChannelHandlerContext first = ch.pipeline().firstContext();
        if (first != null) {
            first.close();
        } else {
            ch.close();
        }
        ch.closeFuture().await(bound.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** Runs {@code task} on the channel's event loop and returns its result; fails after {@code bound}. */
    public static <T> T onEventLoop(Channel ch, Callable<T> task, Duration bound) throws Exception {
        return ch.eventLoop().submit(task).get(bound.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** {@code length} bytes of a repeating pattern (i mod 251). */
    public static byte[] payload(int length) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) (i % 251);
        }
        return bytes;
    }
}
