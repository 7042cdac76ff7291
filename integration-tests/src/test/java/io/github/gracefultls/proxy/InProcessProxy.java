package io.github.gracefultls.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseRelay;
import io.github.gracefultls.examples.proxy.ProxySslContexts;
import io.github.gracefultls.examples.proxy.TlsTerminatingProxyBackendInitializer;
import io.github.gracefultls.examples.proxy.TlsTerminatingProxyInitializer;
import io.github.gracefultls.testing.TestCertificates;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.GlobalEventExecutor;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The example's {@code TlsTerminatingProxy}, assembled in this JVM from its pieces as its {@code main} assembles
 * them (epoll where available, else NIO; default {@link GracefulTlsCloseHandler} settings), on 127.0.0.1 and any free port, with every channel
 * in a group so that a test can see that none is left open.
 */
final class InProcessProxy implements AutoCloseable {

    private static final boolean EPOLL = Epoll.isAvailable();

    private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(
            EPOLL ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
    /** The backends' own loops, or null: on the frontend's loop. */
    private final EventLoopGroup backendGroup;
    private final ChannelGroup channels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
    private final Channel server;

    /**
     * Starts a proxy to {@code 127.0.0.1:upstreamPort}, in plain TCP if {@code upstreamContext} is null, and returns
     * once it listens. Each relay's outcome is given to {@code onOutcome} on an event loop.
     */
    InProcessProxy(SslContext serverContext, SslContext upstreamContext, int upstreamPort,
                   Consumer<TlsCloseRelay.Outcome> onOutcome) throws InterruptedException {
        this(serverContext, upstreamContext, upstreamPort, onOutcome, false);
    }

    /**
     * As above; with {@code separateBackendLoops}, each backend connection runs on a loop of a group of its own, never
     * its frontend's: every relay hops between two loops.
     */
    InProcessProxy(SslContext serverContext, SslContext upstreamContext, int upstreamPort,
                   Consumer<TlsCloseRelay.Outcome> onOutcome, boolean separateBackendLoops)
            throws InterruptedException {
        backendGroup = separateBackendLoops ? new MultiThreadIoEventLoopGroup(
                EPOLL ? EpollIoHandler.newFactory() : NioIoHandler.newFactory()) : null;
        InetSocketAddress upstream = new InetSocketAddress(InetAddress.getLoopbackAddress(), upstreamPort);
        TlsTerminatingProxyBackendInitializer backendInit =
                new TlsTerminatingProxyBackendInitializer(upstreamContext, upstream, GracefulTlsCloseHandler::new);
        Bootstrap backend = new Bootstrap()
                .channel(EPOLL ? EpollSocketChannel.class : NioSocketChannel.class)
                .handler(tracked(backendInit));
        if (backendGroup != null) {
            backend.group(backendGroup);
        }
        TlsTerminatingProxyInitializer frontendInit = new TlsTerminatingProxyInitializer(serverContext,
                GracefulTlsCloseHandler::new, backend, upstream, (client, outcome) -> onOutcome.accept(outcome));
        try {
            server = new ServerBootstrap()
                    .group(group)
                    .channel(EPOLL ? EpollServerSocketChannel.class : NioServerSocketChannel.class)
                    .childOption(ChannelOption.AUTO_READ, false)
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childHandler(tracked(frontendInit))
                    .bind(InetAddress.getLoopbackAddress(), 0).sync().channel();
        } catch (InterruptedException | RuntimeException | Error e) {
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            if (backendGroup != null) {
                backendGroup.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            }
            throw e;
        }
    }

    /** As {@link #InProcessProxy}, with a server context from the PEM files that {@code TestCertificates} wrote. */
    static InProcessProxy start(Consumer<TlsCloseRelay.Outcome> onOutcome, TestCertificates.PemFiles pem,
                                SslProvider provider, String protocol, int upstreamPort,
                                boolean upstreamTls) throws Exception {
        return start(onOutcome, pem, provider, protocol, upstreamPort, upstreamTls, false);
    }

    /** As above; {@code separateBackendLoops}: see {@link #InProcessProxy(SslContext, SslContext, int, Consumer, boolean)}. */
    static InProcessProxy start(Consumer<TlsCloseRelay.Outcome> onOutcome, TestCertificates.PemFiles pem,
                                SslProvider provider, String protocol, int upstreamPort,
                                boolean upstreamTls, boolean separateBackendLoops) throws Exception {
        SslContext serverContext = ProxySslContexts.server(pem.certificate(), pem.privateKey(), provider,
                protocol == null ? List.of("TLSv1.2", "TLSv1.3") : List.of(protocol));
        SslContext upstreamContext = upstreamTls ? ProxySslContexts.upstream(provider, pem.caCertificate(), false)
                : null;
        return new InProcessProxy(serverContext, upstreamContext, upstreamPort, onOutcome, separateBackendLoops);
    }

    private ChannelInitializer<Channel> tracked(ChannelInitializer<Channel> init) {
        return new ChannelInitializer<>() {
            @Override
            protected void initChannel(Channel ch) {
                channels.add(ch);
                ch.pipeline().addLast(init);
            }
        };
    }

    /** Returns the port the proxy listens on. */
    int port() {
        return ((InetSocketAddress) server.localAddress()).getPort();
    }

    /** Returns the number of open channels, client and upstream connections together. */
    int openChannels() {
        return channels.size();
    }

    /** Stops the proxy: the connections still open are closed at once. */
    @Override
    public void close() {
        server.close().syncUninterruptibly();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        if (backendGroup != null) {
            backendGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }
}
