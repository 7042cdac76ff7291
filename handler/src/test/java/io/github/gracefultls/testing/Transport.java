package io.github.gracefultls.testing;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import org.junit.jupiter.api.Assumptions;

/**
 * The socket transports every socket test runs over: the one list for the handler's tests, the interop matrix and the
 * fault tests. NIO and epoll must work here (Linux x86_64): their absence fails the test. io_uring depends on the
 * kernel (and on seccomp in containers), in CI too: where it is unavailable its cells are skipped with the cause,
 * where it is available they must pass.
 *
 * <p>On Netty 4.2 io_uring is Netty's own {@code io.netty.channel.uring}; Netty 4.1 (profile {@code netty41}) has
 * none, and there its cells are skipped with that cause. {@link IoUringTransport} is the one class that differs
 * between the two lines: {@code src/test/netty42} and {@code src/test/netty41} each have theirs.
 */
public enum Transport {
    NIO,
    EPOLL,
    IO_URING;

    /**
     * A new event loop group of {@code threads} threads; the caller shuts it down. Skips (io_uring) or fails (NIO,
     * epoll) the test if the transport cannot run here.
     */
    @SuppressWarnings("deprecation") // NioEventLoopGroup, EpollEventLoopGroup: deprecated in 4.2, the form 4.1 has too
    public EventLoopGroup newGroup(int threads) {
        requireAvailable();
        switch (this) {
            case EPOLL:
                return new EpollEventLoopGroup(threads);
            case IO_URING:
                return IoUringTransport.newGroup(threads);
            case NIO:
            default:
                return new NioEventLoopGroup(threads);
        }
    }

    public Class<? extends SocketChannel> channelClass() {
        switch (this) {
            case EPOLL:
                return EpollSocketChannel.class;
            case IO_URING:
                return IoUringTransport.channelClass();
            case NIO:
            default:
                return NioSocketChannel.class;
        }
    }

    public Class<? extends ServerSocketChannel> serverChannelClass() {
        switch (this) {
            case EPOLL:
                return EpollServerSocketChannel.class;
            case IO_URING:
                return IoUringTransport.serverChannelClass();
            case NIO:
            default:
                return NioServerSocketChannel.class;
        }
    }

    /** Null when the transport can run here, else why not. */
    public Throwable unavailabilityCause() {
        switch (this) {
            case EPOLL:
                return Epoll.unavailabilityCause();
            case IO_URING:
                try {
                    return IoUringTransport.unavailabilityCause();
                } catch (LinkageError e) { // test classes compiled for the other Netty line
                    return e;
                }
            case NIO:
            default:
                return null;
        }
    }

    /**
     * Returns normally when the transport can run. NIO and epoll must: their absence fails the test. io_uring may be
     * missing from the kernel: the test is then skipped, with the cause, as not runnable here.
     */
    public void requireAvailable() {
        Throwable cause = unavailabilityCause();
        if (cause == null) {
            return;
        }
        if (this == IO_URING) {
            Assumptions.abort("not runnable: io_uring is unavailable here: " + cause);
        }
        throw new AssertionError(this + " transport must be available on Linux x86_64", cause);
    }
}
