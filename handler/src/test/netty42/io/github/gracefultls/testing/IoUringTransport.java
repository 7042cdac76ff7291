package io.github.gracefultls.testing;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;

/** {@link Transport#IO_URING} on Netty 4.2: {@code io.netty.channel.uring}. */
final class IoUringTransport {

    private IoUringTransport() {
    }

    static Throwable unavailabilityCause() {
        return IoUring.unavailabilityCause();
    }

    static EventLoopGroup newGroup(int threads) {
        return new MultiThreadIoEventLoopGroup(threads, IoUringIoHandler.newFactory());
    }

    static Class<? extends SocketChannel> channelClass() {
        return IoUringSocketChannel.class;
    }

    static Class<? extends ServerSocketChannel> serverChannelClass() {
        return IoUringServerSocketChannel.class;
    }
}
