package io.github.gracefultls.testing;

import java.util.Deque;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * What a test (or a test class) opened, closed by {@link #close()} last opened first, even when one of them fails: the
 * first failure is thrown, with the others suppressed. Resources may be added from any thread (an event loop
 * accepting a connection, say).
 */
public final class Resources implements AutoCloseable {

    private final Deque<AutoCloseable> open = new ConcurrentLinkedDeque<>();

    /** Registers {@code resource} to be closed by {@link #close()}, before those added earlier; returns it. */
    public <T extends AutoCloseable> T add(T resource) {
        open.push(resource);
        return resource;
    }

    /** Closes every resource added so far, last added first. Can be called again for those added later. */
    @Override
    public void close() throws Exception {
        Exception failure = null;
        for (AutoCloseable resource = open.poll(); resource != null; resource = open.poll()) {
            try {
                resource.close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
