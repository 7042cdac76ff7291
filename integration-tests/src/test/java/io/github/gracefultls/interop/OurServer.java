package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.testing.EventLoops;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.RecvByteBufAllocator;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;

/** Our TLS server on a free loopback port: every accepted connection gets an {@link Endpoint} pipeline. */
final class OurServer implements AutoCloseable {

    private final Channel serverChannel;
    private final BlockingQueue<Endpoint> accepted = new LinkedBlockingQueue<>();
    private final List<Endpoint> all = new CopyOnWriteArrayList<>();

    private OurServer(EventLoops loops, Cell cell, RecvByteBufAllocator reads,
                      Supplier<GracefulTlsCloseHandler> handlers, Supplier<List<ChannelHandler>> app) throws Exception {
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(loops.group(cell.transport()))
                .channel(cell.transport().serverChannelClass())
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childOption(ChannelOption.RCVBUF_ALLOCATOR, reads != null ? reads : new AdaptiveRecvByteBufAllocator())
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        Endpoint endpoint = Endpoint.install(ch, cell.serverContext(), handlers.get(), app.get());
                        all.add(endpoint);
                        accepted.add(endpoint);
                    }
                });
        ChannelFuture bound = bootstrap.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        bound.get(Endpoint.AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        serverChannel = bound.channel();
        assertThat(serverChannel).isInstanceOf(cell.transport().serverChannelClass());
    }

    /**
     * Starts a server for {@code cell}. Each accepted channel gets a handler from {@code handlers} and the
     * application handlers from {@code app}.
     */
    static OurServer start(EventLoops loops, Cell cell, Supplier<GracefulTlsCloseHandler> handlers,
                           Supplier<List<ChannelHandler>> app) throws Exception {
        return new OurServer(loops, cell, null, handlers, app);
    }

    /** As {@link #start(EventLoops, Cell, Supplier, Supplier)}, with the accepted channels' reads. */
    static OurServer start(EventLoops loops, Cell cell, RecvByteBufAllocator reads,
                           Supplier<GracefulTlsCloseHandler> handlers, Supplier<List<ChannelHandler>> app)
            throws Exception {
        return new OurServer(loops, cell, reads, handlers, app);
    }

    int port() {
        return ((InetSocketAddress) serverChannel.localAddress()).getPort();
    }

    /** The next accepted connection, once its TLS handshake succeeded. */
    Endpoint awaitAccepted(Duration bound) throws Exception {
        Endpoint endpoint = accepted.poll(bound.toMillis(), TimeUnit.MILLISECONDS);
        if (endpoint == null) {
            throw new AssertionError("no connection accepted within " + bound);
        }
        endpoint.awaitHandshake();
        return endpoint;
    }

    Endpoint awaitAccepted() throws Exception {
        return awaitAccepted(Endpoint.AWAIT);
    }

    @Override
    public void close() throws Exception {
        serverChannel.close().await(Endpoint.AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        for (Endpoint endpoint : all) {
            endpoint.close();
        }
    }
}
