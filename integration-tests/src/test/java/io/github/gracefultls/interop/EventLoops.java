package io.github.gracefultls.interop;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** One event loop group per transport, created on first use and shut down by {@link #close()}. */
final class EventLoops implements AutoCloseable {

    private final Map<Transport, EventLoopGroup> groups = new EnumMap<>(Transport.class);

    /** The group of {@code transport}; skips (io_uring) or fails (NIO, epoll) the test if it cannot run here. */
    synchronized EventLoopGroup group(Transport transport) {
        transport.requireAvailable();
        return groups.computeIfAbsent(transport, t -> new MultiThreadIoEventLoopGroup(2, t.ioHandlerFactory()));
    }

    @Override
    public synchronized void close() throws InterruptedException {
        for (EventLoopGroup group : groups.values()) {
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS);
        }
        for (EventLoopGroup group : groups.values()) {
            if (!group.terminationFuture().await(10, TimeUnit.SECONDS)) {
                throw new AssertionError("event loop group did not terminate: " + group);
            }
        }
        groups.clear();
    }
}
