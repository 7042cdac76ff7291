package io.github.gracefultls.testing;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.incubator.channel.uring.IOUring;
import io.netty.incubator.channel.uring.IOUringEventLoopGroup;
import io.netty.incubator.channel.uring.IOUringServerSocketChannel;
import io.netty.incubator.channel.uring.IOUringSocketChannel;

/**
 * {@link Transport#IO_URING} on Netty 4.1: the incubator's {@code io.netty.incubator.channel.uring}, which Netty 4.2
 * took in as {@code io.netty.channel.uring}.
 */
final class IoUringTransport {

    private IoUringTransport() {
    }

    static Throwable unavailabilityCause() {
        return IOUring.unavailabilityCause();
    }

    static EventLoopGroup newGroup(int threads) {
        return new IOUringEventLoopGroup(threads);
    }

    static Class<? extends SocketChannel> channelClass() {
        return IOUringSocketChannel.class;
    }

    static Class<? extends ServerSocketChannel> serverChannelClass() {
        return IOUringServerSocketChannel.class;
    }
}
