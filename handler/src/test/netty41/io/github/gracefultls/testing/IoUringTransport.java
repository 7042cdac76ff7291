package io.github.gracefultls.testing;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketChannel;

/**
 * {@link Transport#IO_URING} on Netty 4.1: not run. Netty 4.1 has no io_uring transport of its own, and the
 * incubator's ({@code netty-incubator-transport-native-io_uring} 0.0.26.Final, which 4.2 took in) leaks a read buffer
 * of its own when the peer resets the connection (paranoid leak detection, {@code TlsCloseRelayTruncationTest}):
 * the Netty 4.1 leg runs NIO and epoll, and skips the io_uring cells with this cause.
 */
final class IoUringTransport {

    private static final String UNAVAILABLE = "Netty 4.1 has no io_uring transport of its own (the incubator's leaks"
            + " its read buffers on a reset): the Netty 4.1 leg runs NIO and epoll only";

    private IoUringTransport() {
    }

    static Throwable unavailabilityCause() {
        return new UnsupportedOperationException(UNAVAILABLE);
    }

    static EventLoopGroup newGroup(int threads) {
        throw new UnsupportedOperationException(UNAVAILABLE);
    }

    static Class<? extends SocketChannel> channelClass() {
        throw new UnsupportedOperationException(UNAVAILABLE);
    }

    static Class<? extends ServerSocketChannel> serverChannelClass() {
        throw new UnsupportedOperationException(UNAVAILABLE);
    }
}
