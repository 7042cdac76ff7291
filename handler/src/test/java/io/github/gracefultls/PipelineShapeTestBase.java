package io.github.gracefultls;

import io.github.gracefultls.testing.TlsSockets;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

import static java.util.concurrent.TimeUnit.SECONDS;

/**
 * Socket tests of pipelines other than the README's: a server and a client whose pipelines the test builds (SNI,
 * OptionalSslHandler, StartTLS), on the transport under test, with {@link ChannelOption#ALLOW_HALF_CLOSURE} on.
 * Everything opened is closed after the test, below TLS.
 */
abstract class PipelineShapeTestBase extends SocketClosureTestBase {

    /** A listening server that accepts one connection, built by the test's initializer; later ones are closed. */
    static final class Server {
        final CompletableFuture<Channel> accepted = new CompletableFuture<>();
        Channel listening;

        SocketAddress address() {
            return listening.localAddress();
        }

        /** The accepted connection; fails if none comes in time. */
        Channel awaitAccepted() throws Exception {
            return accepted.get(AWAIT_SECONDS, SECONDS);
        }
    }

    Server listen(Consumer<Channel> init) throws Exception {
        Server server = new Server();
        ServerBootstrap b = new ServerBootstrap()
                .group(group())
                .channel(transport.serverChannelClass())
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (server.accepted.isDone()) {
                            ch.close();
                            return;
                        }
                        sockets.closeAfter(() -> TlsSockets.closeBelowTls(ch, AWAIT));
                        init.accept(ch);
                        server.accepted.complete(ch);
                    }
                });
        ChannelFuture bind = b.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        server.listening = bind.channel();
        sockets.closeAfter(() -> bind.channel().close().await(AWAIT_SECONDS, SECONDS));
        bind.get(AWAIT_SECONDS, SECONDS);
        return server;
    }

    /** Connects a client whose pipeline {@code init} builds; returns its channel once connected. */
    Channel connect(SocketAddress address, Consumer<Channel> init) throws Exception {
        Bootstrap b = new Bootstrap()
                .group(group())
                .channel(transport.channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        init.accept(ch);
                    }
                });
        ChannelFuture connect = b.connect(address);
        Channel channel = connect.channel();
        sockets.closeAfter(() -> TlsSockets.closeBelowTls(channel, AWAIT));
        connect.get(AWAIT_SECONDS, SECONDS);
        return channel;
    }
}
