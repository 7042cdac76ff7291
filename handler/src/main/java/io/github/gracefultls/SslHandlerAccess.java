package io.github.gracefultls;

import io.netty.channel.AbstractCoalescingBufferQueue;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import java.lang.reflect.Field;
import java.lang.reflect.Method;

/**
 * Reads three things of an {@link SslHandler} that it and {@code ByteToMessageDecoder} keep to themselves,
 * reflectively: how many received bytes it holds undecoded (the bytes of an incomplete TLS record), read only when
 * the transport's input ends; its cumulator, read once when the handler is added; and whether it holds writes not
 * wrapped yet, read once when our close_notify is sent. Each is unavailable where the package is not open to this
 * module (Netty 4.2 on the module path): {@code -1}, {@code null} and {@code true} then.
 */
final class SslHandlerAccess {

    private static final InternalLogger logger = InternalLoggerFactory.getInstance(SslHandlerAccess.class);
    private static final Method ACTUAL_READABLE_BYTES = lookupMethod();
    private static final Field CUMULATOR = lookupField();
    private static final Field PENDING_WRITES = lookupPendingWrites();

    private SslHandlerAccess() {
    }

    private static Method lookupMethod() {
        try {
            Method m = ByteToMessageDecoder.class.getDeclaredMethod("actualReadableBytes");
            m.setAccessible(true);
            return m;
        } catch (ReflectiveOperationException | RuntimeException e) {
            logger.debug("Cannot read SslHandler's undecoded bytes; truncations will not say whether they cut "
                    + "a TLS record", e);
            return null;
        }
    }

    private static Field lookupField() {
        try {
            Field f = ByteToMessageDecoder.class.getDeclaredField("cumulator");
            if (f.getType() != ByteToMessageDecoder.Cumulator.class) {
                return null;
            }
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            logger.debug("Cannot read SslHandler's cumulator; the TLS record framing is followed before it", e);
            return null;
        }
    }

    private static Field lookupPendingWrites() {
        try {
            Field f = SslHandler.class.getDeclaredField("pendingUnencryptedWrites");
            if (!AbstractCoalescingBufferQueue.class.isAssignableFrom(f.getType())) {
                return null;
            }
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            logger.debug("Cannot read SslHandler's pending writes; they are flushed before every close_notify", e);
            return null;
        }
    }

    /**
     * Whether the SslHandler holds writes it has not wrapped yet, which a flush must wrap before our close_notify;
     * {@code true} when that cannot be read.
     */
    static boolean hasPendingWrites(SslHandler sslHandler) {
        Field f = PENDING_WRITES;
        if (f == null) {
            return true;
        }
        try {
            Object queue = f.get(sslHandler);
            return queue != null && !((AbstractCoalescingBufferQueue) queue).isEmpty();
        } catch (ReflectiveOperationException | RuntimeException e) {
            return true;
        }
    }

    /** Whether {@link #undecodedBytes} can read the count at all. */
    static boolean isAvailable() {
        return ACTUAL_READABLE_BYTES != null;
    }

    /** The bytes {@code decoder} (an SslHandler, or a handler that puts one in place later) holds undecoded. */
    static int undecodedBytes(ByteToMessageDecoder decoder) {
        Method m = ACTUAL_READABLE_BYTES;
        if (m == null) {
            return -1;
        }
        try {
            return (Integer) m.invoke(decoder);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return -1;
        }
    }

    /** The SslHandler's current cumulator, or null if it cannot be read. */
    static ByteToMessageDecoder.Cumulator cumulator(SslHandler sslHandler) {
        Field f = CUMULATOR;
        if (f == null) {
            return null;
        }
        try {
            return (ByteToMessageDecoder.Cumulator) f.get(sslHandler);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}
