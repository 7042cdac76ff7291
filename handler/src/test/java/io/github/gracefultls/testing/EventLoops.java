package io.github.gracefultls.testing;

import io.netty.channel.EventLoopGroup;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** One event loop group per {@link Transport}, created on first use and shut down by {@link #close()}. */
public final class EventLoops implements AutoCloseable {

    private final int threads;
    private final Map<Transport, EventLoopGroup> groups = new EnumMap<>(Transport.class);

    /** Groups of {@code threads} threads each. */
    public EventLoops(int threads) {
        this.threads = threads;
    }

    /** The group of {@code transport}; skips (io_uring) or fails (NIO, epoll) the test if it cannot run here. */
    public synchronized EventLoopGroup group(Transport transport) {
        transport.requireAvailable();
        return groups.computeIfAbsent(transport, t -> t.newGroup(threads));
    }

    /** Shuts every group down and waits for it; fails if one does not terminate in time. */
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
