package io.github.gracefultls;

import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import java.lang.reflect.Field;
import java.lang.reflect.Method;

/**
 * Reads two things of an {@link SslHandler} that {@code ByteToMessageDecoder} keeps to itself, reflectively: how
 * many received bytes it holds undecoded (the bytes of an incomplete TLS record), read only when the transport's
 * input ends, and its cumulator, read once when the handler is added. Each is unavailable where the codec package
 * is not open to this module (Netty 4.2 on the module path): {@code -1} and {@code null} then.
 */
final class SslHandlerAccess {

    private static final InternalLogger logger = InternalLoggerFactory.getInstance(SslHandlerAccess.class);
    private static final Method ACTUAL_READABLE_BYTES = lookupMethod();
    private static final Field CUMULATOR = lookupField();

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

    /** Whether {@link #undecodedBytes} can read the count at all. */
    static boolean isAvailable() {
        return ACTUAL_READABLE_BYTES != null;
    }

    static int undecodedBytes(SslHandler sslHandler) {
        Method m = ACTUAL_READABLE_BYTES;
        if (m == null) {
            return -1;
        }
        try {
            return (Integer) m.invoke(sslHandler);
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
