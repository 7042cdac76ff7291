package io.github.gracefultls;

import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.Transport;
import io.netty.channel.EventLoopGroup;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;

import static java.util.concurrent.TimeUnit.NANOSECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Tests over real loopback sockets, run once per {@link Transport} (NIO, epoll, io_uring), the way Netty's testsuite
 * re-runs a socket test per transport. A subclass's tests open their channels through {@link #sockets}, on one event
 * loop group per transport; io_uring's tests are skipped, with the cause, where the kernel has no io_uring.
 */
@ParameterizedClass(name = "{0}")
@EnumSource(Transport.class)
abstract class SocketTestBase {

    /** The group of the transport under test, created by its first test and shut down after its last. */
    private static EventLoopGroup group;
    private static Duration groupAwait;

    @Parameter
    Transport transport;
    /** Our side and the peers of the current test, closed after it. */
    TlsSockets sockets;

    /** Threads of the event loop group, which our side and the peers share. */
    abstract int eventLoopThreads();

    /** Bound of every wait on an outcome that should come at once. */
    abstract Duration await();

    /** The group's shutdown timeout; the test waits for its end twice as long. */
    Duration shutdownTimeout() {
        return await();
    }

    @BeforeEach
    final void openSockets() {
        transport.requireAvailable();
        if (group == null) {
            group = transport.newGroup(eventLoopThreads());
            groupAwait = shutdownTimeout();
        }
        sockets = new TlsSockets(group, transport.channelClass(), transport.serverChannelClass(), await());
    }

    @AfterEach
    final void closeSockets() throws Exception {
        if (sockets != null) {
            sockets.close();
        }
    }

    @AfterParameterizedClassInvocation
    static void stopEventLoop() throws InterruptedException {
        if (group != null) {
            EventLoopGroup stopping = group;
            group = null;
            long nanos = groupAwait.toNanos();
            assertThat(stopping.shutdownGracefully(0, nanos, NANOSECONDS).await(2 * nanos, NANOSECONDS)).isTrue();
        }
    }

    final EventLoopGroup group() {
        return group;
    }
}
