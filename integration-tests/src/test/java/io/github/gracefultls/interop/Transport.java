package io.github.gracefultls.interop;

import io.netty.channel.IoHandlerFactory;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import org.junit.jupiter.api.Assumptions;

import java.util.function.Supplier;

/**
 * The Netty transports the matrix runs over. NIO and epoll must work here (Linux x86_64); io_uring depends on the
 * kernel (and on seccomp in containers): where it is unavailable its cells are skipped with the reason, where it is
 * available they must pass.
 */
enum Transport {
    NIO(NioIoHandler::newFactory, NioSocketChannel.class, NioServerSocketChannel.class),
    EPOLL(EpollIoHandler::newFactory, EpollSocketChannel.class, EpollServerSocketChannel.class),
    IO_URING(IoUringIoHandler::newFactory, IoUringSocketChannel.class, IoUringServerSocketChannel.class);

    private final Supplier<IoHandlerFactory> ioHandlerFactory;
    private final Class<? extends SocketChannel> channelClass;
    private final Class<? extends ServerSocketChannel> serverChannelClass;

    Transport(Supplier<IoHandlerFactory> ioHandlerFactory, Class<? extends SocketChannel> channelClass,
              Class<? extends ServerSocketChannel> serverChannelClass) {
        this.ioHandlerFactory = ioHandlerFactory;
        this.channelClass = channelClass;
        this.serverChannelClass = serverChannelClass;
    }

    IoHandlerFactory ioHandlerFactory() {
        return ioHandlerFactory.get();
    }

    Class<? extends SocketChannel> channelClass() {
        return channelClass;
    }

    Class<? extends ServerSocketChannel> serverChannelClass() {
        return serverChannelClass;
    }

    /** Null when the transport can run here, else why not. */
    Throwable unavailabilityCause() {
        switch (this) {
            case EPOLL:
                return Epoll.unavailabilityCause();
            case IO_URING:
                return IoUring.unavailabilityCause();
            case NIO:
            default:
                return null;
        }
    }

    /**
     * Returns normally when the transport can run. NIO and epoll must: their absence fails the test. io_uring may be
     * missing from the kernel: the cell is then skipped, with the reason, as not runnable here.
     */
    void requireAvailable() {
        Throwable cause = unavailabilityCause();
        if (cause == null) {
            return;
        }
        if (this == IO_URING) {
            Assumptions.abort("not runnable: io_uring is unavailable in this kernel: " + cause);
        }
        throw new AssertionError(this + " transport must be available on Linux x86_64", cause);
    }
}
