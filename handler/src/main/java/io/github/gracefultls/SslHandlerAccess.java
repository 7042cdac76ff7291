package io.github.gracefultls;

import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import java.lang.reflect.Method;

/**
 * Reads how many received bytes an {@link SslHandler} holds undecoded, that is the bytes of an incomplete TLS record.
 * {@code ByteToMessageDecoder.actualReadableBytes()} is protected, so it is read reflectively, only at the moment the
 * transport's input ends. Returns {@code -1} when that is not possible.
 */
final class SslHandlerAccess {

    private static final InternalLogger logger = InternalLoggerFactory.getInstance(SslHandlerAccess.class);
    private static final Method ACTUAL_READABLE_BYTES = lookup();

    private SslHandlerAccess() {
    }

    private static Method lookup() {
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
}
