package io.github.gracefultls.testing;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * Inbound handler recording what reaches the application: received bytes, user events, channelInactive
 * and exceptions. Usually the last handler of a pipeline.
 * <ul>
 *   <li>{@code ByteBuf} messages are copied into {@link #receivedBytes()} and released (not forwarded);
 *       other messages are forwarded unchanged.</li>
 *   <li>User events are appended to {@link #events()} and forwarded.</li>
 *   <li>{@code channelInactive} appends {@link Marker#CHANNEL_INACTIVE} to {@link #events()} and is forwarded,
 *       so tests can assert the order of events relative to channelInactive.</li>
 *   <li>Exceptions are appended to {@link #exceptions()} and, unless built with
 *       {@link #swallowingExceptions()}, forwarded (an {@code EmbeddedChannel} then rethrows them).</li>
 * </ul>
 * {@link #timeline()} interleaves everything ({@link Read} entries for data, events, markers, exceptions).
 * <p>
 * Thread-safe (all state guarded by {@code this}), so it can also be used on real event loops together with
 * the {@code await*} methods.
 */
public class RecordingHandler extends ChannelInboundHandlerAdapter {

    /** Markers for channel state changes, recorded in {@link #events()}. */
    public enum Marker {
        CHANNEL_INACTIVE
    }

    /** One {@code channelRead} of a {@code ByteBuf}, as recorded in {@link #timeline()}. */
    public static final class Read {
        private final byte[] bytes;

        Read(byte[] bytes) {
            this.bytes = bytes;
        }

        public byte[] bytes() {
            return bytes.clone();
        }

        @Override
        public String toString() {
            return "Read[" + bytes.length + " bytes]";
        }
    }

    private final boolean propagateExceptions;
    private final ByteArrayOutputStream received = new ByteArrayOutputStream();
    private final List<Object> events = new ArrayList<>();
    private final List<Object> timeline = new ArrayList<>();
    private final List<Throwable> exceptions = new ArrayList<>();
    private int reads;

    /** Records and forwards exceptions. */
    public RecordingHandler() {
        this(true);
    }

    private RecordingHandler(boolean propagateExceptions) {
        this.propagateExceptions = propagateExceptions;
    }

    /** A handler that records exceptions but does not forward them (so they are not rethrown by EmbeddedChannel). */
    public static RecordingHandler swallowingExceptions() {
        return new RecordingHandler(false);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof ByteBuf) {
            ByteBuf buf = (ByteBuf) msg;
            byte[] bytes;
            try {
                bytes = ByteBufUtil.getBytes(buf);
            } finally {
                buf.release();
            }
            synchronized (this) {
                received.writeBytes(bytes);
                reads++;
                timeline.add(new Read(bytes));
                notifyAll();
            }
        } else {
            synchronized (this) {
                timeline.add(msg);
                notifyAll();
            }
            ctx.fireChannelRead(msg);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        synchronized (this) {
            events.add(evt);
            timeline.add(evt);
            notifyAll();
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        synchronized (this) {
            events.add(Marker.CHANNEL_INACTIVE);
            timeline.add(Marker.CHANNEL_INACTIVE);
            notifyAll();
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        synchronized (this) {
            exceptions.add(cause);
            timeline.add(cause);
            notifyAll();
        }
        if (propagateExceptions) {
            ctx.fireExceptionCaught(cause);
        }
    }

    /** All bytes received so far, concatenated. */
    public synchronized byte[] receivedBytes() {
        return received.toByteArray();
    }

    /** {@link #receivedBytes()} decoded as UTF-8. */
    public String receivedString() {
        return new String(receivedBytes(), StandardCharsets.UTF_8);
    }

    /** Number of {@code ByteBuf}s received. */
    public synchronized int reads() {
        return reads;
    }

    /** User events and {@link Marker}s, in order. */
    public synchronized List<Object> events() {
        return List.copyOf(events);
    }

    /** The recorded user events that are instances of {@code type}, in order. */
    public synchronized <T> List<T> eventsOfType(Class<T> type) {
        List<T> result = new ArrayList<>();
        for (Object event : events) {
            if (type.isInstance(event)) {
                result.add(type.cast(event));
            }
        }
        return result;
    }

    /** Whether channelInactive was seen. */
    public synchronized boolean isInactive() {
        return events.contains(Marker.CHANNEL_INACTIVE);
    }

    /** Exceptions seen by {@code exceptionCaught}, in order. */
    public synchronized List<Throwable> exceptions() {
        return List.copyOf(exceptions);
    }

    /** Everything recorded, in order: {@link Read}s, other messages, user events, {@link Marker}s, exceptions. */
    public synchronized List<Object> timeline() {
        return List.copyOf(timeline);
    }

    /** Waits until an event of {@code type} was recorded and returns the first one. */
    public <T> T awaitEvent(Class<T> type, Duration timeout) throws InterruptedException {
        awaitCondition(h -> !h.eventsOfType(type).isEmpty(), timeout, "event of " + type.getName());
        return eventsOfType(type).get(0);
    }

    /** Waits until channelInactive was seen. */
    public void awaitInactive(Duration timeout) throws InterruptedException {
        awaitCondition(RecordingHandler::isInactive, timeout, "channelInactive");
    }

    /** Waits until at least {@code count} bytes were received. */
    public void awaitBytes(int count, Duration timeout) throws InterruptedException {
        awaitCondition(h -> h.received.size() >= count, timeout, count + " received bytes");
    }

    /** Waits until {@code condition} holds for this handler; fails with an {@link AssertionError} on timeout. */
    public synchronized void awaitCondition(Predicate<? super RecordingHandler> condition, Duration timeout,
                                            String description) throws InterruptedException {
        Objects.requireNonNull(condition, "condition");
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.test(this)) {
            long remainingMillis = (deadline - System.nanoTime()) / 1_000_000L;
            if (remainingMillis <= 0) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + description
                        + "; timeline: " + timeline);
            }
            wait(remainingMillis);
        }
    }

    @Override
    public synchronized String toString() {
        return "RecordingHandler" + timeline;
    }
}
