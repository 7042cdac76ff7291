package io.github.gracefultls.benchmarks;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/** Epoll sockets on loopback for the harnesses: one-thread event loop groups, servers and client bootstraps. */
final class Net {

    static final String LOOPBACK = "127.0.0.1";

    private Net() {
    }

    static EventLoopGroup group(String name) {
        Epoll.ensureAvailability();
        return new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory(name, true), EpollIoHandler.newFactory());
    }

    /**
     * Pins the one thread of {@code group} to {@code cpu} with {@code taskset} (Linux): the thread finds its own id
     * in {@code /proc/thread-self}. Returns what was done, for the harness's output.
     */
    static String pin(EventLoopGroup group, int cpu) throws Exception {
        String tid = group.submit(() -> {
            Path self = Files.readSymbolicLink(Paths.get("/proc/thread-self")); // "<pid>/task/<tid>"
            return self.getFileName().toString();
        }).get(10, TimeUnit.SECONDS);
        Process p = new ProcessBuilder("taskset", "-pc", Integer.toString(cpu), tid)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("taskset -pc " + cpu + " " + tid + " failed: " + out);
        }
        return "thread " + tid + " -> cpu " + cpu;
    }

    /** Starts a server on an ephemeral loopback port; the initializer builds each accepted channel's pipeline. */
    static Channel server(EventLoopGroup boss, EventLoopGroup workers, Consumer<SocketChannel> init) {
        return new ServerBootstrap()
                .group(boss, workers)
                .channel(EpollServerSocketChannel.class)
                .option(ChannelOption.SO_BACKLOG, 4096)
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        init.accept(ch);
                    }
                })
                .bind(LOOPBACK, 0).syncUninterruptibly().channel();
    }

    static Bootstrap client(EventLoopGroup group, Consumer<SocketChannel> init) {
        return new Bootstrap()
                .group(group)
                .channel(EpollSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        init.accept(ch);
                    }
                });
    }

    static int port(Channel server) {
        return ((InetSocketAddress) server.localAddress()).getPort();
    }

    static void shutdown(EventLoopGroup... groups) {
        for (EventLoopGroup g : groups) {
            if (g != null) {
                g.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            }
        }
        for (EventLoopGroup g : groups) {
            if (g != null) {
                g.terminationFuture().awaitUninterruptibly(10, TimeUnit.SECONDS);
            }
        }
    }

    /** Swallows the exceptions that reach the end of a pipeline: resets and the like are expected at closure. */
    @ChannelHandler.Sharable
    static final class Quiet extends ChannelInboundHandlerAdapter {
        static final Quiet INSTANCE = new Quiet();

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // expected at closure
        }
    }

    /** Parses "1g", "512m", "64k" or a plain number of bytes. */
    static long bytes(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        long unit = 1;
        if (t.endsWith("g") || t.endsWith("gib")) {
            unit = 1L << 30;
        } else if (t.endsWith("m") || t.endsWith("mib")) {
            unit = 1L << 20;
        } else if (t.endsWith("k") || t.endsWith("kib")) {
            unit = 1L << 10;
        }
        return Long.parseLong(t.replaceAll("[a-z]+$", "")) * unit;
    }
}
