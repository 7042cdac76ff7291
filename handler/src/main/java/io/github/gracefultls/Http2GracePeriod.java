package io.github.gracefultls;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;

import java.lang.reflect.Method;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Looks, when a local close begins, for an HTTP/2 codec after the handler that closes without draining its open
 * streams: an {@code Http2ConnectionHandler} (Netty's {@code Http2FrameCodec}, {@code HttpToHttp2ConnectionHandler},
 * ...) whose {@code gracefulShutdownTimeoutMillis()} is 0, the default of {@code Http2FrameCodecBuilder}. Such a codec
 * sends GOAWAY and passes the close on at once: the streams still open are cut, whatever the TLS closure does after.
 * The grace period is the application's choice, and the codec owns the streams, so this only says so: a warning the
 * first time in the JVM, at debug level afterwards.
 *
 * <p>The handler depends on {@code netty-handler} only: the codec is recognised by the name of its class or of a
 * superclass, and asked through reflection. Anything that goes wrong there is ignored.
 */
final class Http2GracePeriod {

    private static final String CODEC = "io.netty.handler.codec.http2.Http2ConnectionHandler";
    private static final String GETTER = "gracefulShutdownTimeoutMillis";
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private Http2GracePeriod() {
    }

    /** Logs if a handler after {@code ctx} is an HTTP/2 codec whose close does not drain its open streams. */
    static void check(ChannelHandlerContext ctx) {
        if (WARNED.get() && !GracefulTlsCloseHandler.logger.isDebugEnabled()) {
            return; // said once; nothing more to say at this level
        }
        boolean after = false;
        for (Map.Entry<String, ChannelHandler> e : ctx.pipeline()) {
            ChannelHandler h = e.getValue();
            if (h == ctx.handler()) {
                after = true;
            } else if (after && isCodec(h.getClass()) && graceMillis(h) == 0) {
                log(ctx, e.getKey(), h);
                return;
            }
        }
    }

    private static boolean isCodec(Class<?> type) {
        for (Class<?> c = type; c != null; c = c.getSuperclass()) {
            if (CODEC.equals(c.getName())) {
                return true;
            }
        }
        return false;
    }

    /** The codec's grace period, or -1 (wait for the streams without a deadline) if it cannot be read. */
    private static long graceMillis(ChannelHandler codec) {
        try {
            Method getter = codec.getClass().getMethod(GETTER);
            Object value = getter.invoke(codec);
            return value instanceof Long ? (Long) value : -1;
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            GracefulTlsCloseHandler.logger.debug("cannot read {}() of {}", GETTER, codec, e);
            return -1;
        }
    }

    private static void log(ChannelHandlerContext ctx, String name, ChannelHandler codec) {
        String message = "{} closes with HTTP/2 codec '{}' ({}) set to gracefulShutdownTimeoutMillis 0: its GOAWAY"
                + " is followed at once by close_notify and FIN, and open streams are cut (curl: exit 18). Set a"
                + " grace period on the codec's builder, e.g. Http2FrameCodecBuilder.gracefulShutdownTimeoutMillis"
                + "(30000) (docs/pipelines.md). Said once per JVM; further occurrences at debug level.";
        if (WARNED.compareAndSet(false, true)) {
            GracefulTlsCloseHandler.logger.warn(message, ctx.channel(), name, codec.getClass().getName());
        } else {
            GracefulTlsCloseHandler.logger.debug(message, ctx.channel(), name, codec.getClass().getName());
        }
    }
}
