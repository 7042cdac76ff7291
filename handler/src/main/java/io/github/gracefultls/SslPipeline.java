package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.OptionalSslHandler;
import io.netty.handler.ssl.SslClientHelloHandler;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslHandler;

import java.io.IOException;
import java.util.Map;

/**
 * The handler's place in the pipeline, next to its {@link SslHandler}: finding the SslHandler, or the handler that
 * puts one in place later, closing the transport below it (where its own close logic and timers stay out of the
 * way), and taking handlers out.
 */
final class SslPipeline {

    private SslPipeline() {
    }

    /**
     * The context of the last handler before {@code ctx} that is an SslHandler or {@linkplain #putsSslHandlerLater
     * puts one in place later}, or null.
     */
    static ChannelHandlerContext tlsBefore(ChannelHandlerContext ctx) {
        ChannelPipeline pipeline = ctx.pipeline();
        ChannelHandlerContext found = null;
        for (Map.Entry<String, ChannelHandler> e : pipeline) {
            ChannelHandler h = e.getValue();
            if (h == ctx.handler()) {
                return found;
            }
            if (h instanceof SslHandler || putsSslHandlerLater(h)) {
                found = pipeline.context(h);
            }
        }
        return null;
    }

    /**
     * Whether {@code handler} is one of Netty's handlers that put an SslHandler in their own place once the first
     * bytes arrived, by {@code pipeline.replace}: {@code SniHandler} and every other {@link SslClientHelloHandler}
     * ({@code AbstractSniHandler}), after the ClientHello; {@link OptionalSslHandler}, if those bytes are TLS.
     */
    static boolean putsSslHandlerLater(ChannelHandler handler) {
        return handler instanceof SslClientHelloHandler || handler instanceof OptionalSslHandler;
    }

    /** True once the SslHandler left the pipeline, already while its handlerRemoved() runs. */
    static boolean isRemoved(ChannelHandlerContext ctx, SslHandler ssl) {
        return ctx.pipeline().context(ssl) == null;
    }

    /**
     * Closes (or disconnects) the transport below the SslHandler, or below {@code ctx} once it left or if there is
     * none ({@code ssl} null).
     */
    static void close(ChannelHandlerContext ctx, SslHandler ssl, ChannelPromise promise, boolean disconnect) {
        ChannelHandlerContext sslCtx = ssl == null ? null : ctx.pipeline().context(ssl);
        ChannelHandlerContext below = sslCtx != null ? sslCtx : ctx;
        if (disconnect) {
            below.disconnect(promise);
        } else {
            below.close(promise);
        }
    }

    /** Closes the transport below the SslHandler with a TCP reset where it allows one: no alert, no close_notify. */
    static void resetAndClose(ChannelHandlerContext ctx, SslHandler ssl, ChannelPromise promise) {
        resetOnClose(ctx.channel());
        close(ctx, ssl, promise, false);
    }

    /** {@code SO_LINGER} 0 where the transport allows it: whoever closes the channel from now on sends a reset. */
    static void resetOnClose(Channel ch) {
        if (ch.isActive()) {
            try {
                ch.config().setOption(ChannelOption.SO_LINGER, 0);
            } catch (RuntimeException e) {
                GracefulTlsCloseHandler.logger.debug("{} cannot set SO_LINGER 0: closing without a reset", ch, e);
            }
        }
    }

    /** Shuts down the TCP output (FIN) of a channel that can, and logs a failure at debug. */
    static void shutdownTcpOutput(Channel ch) {
        if (ch instanceof DuplexChannel && ch.isActive()) {
            ((DuplexChannel) ch).shutdownOutput().addListener(f -> {
                if (!f.isSuccess()) {
                    GracefulTlsCloseHandler.logger.debug("{} TCP shutdownOutput() failed", ch, f.cause());
                }
            });
        }
    }

    /**
     * Removes the SslHandler: it hands its undecoded bytes, those after the peer's close_notify, to the next handler
     * as plaintext. Removed inside its own decode(), it does so once decode() returns.
     */
    static void removeSslHandler(ChannelHandlerContext ctx, SslHandler ssl) {
        removeQuietly(ctx, ssl);
        ctx.pipeline().flush(); // an engine's own close_notify reply may still be written but not flushed
    }

    static void removeQuietly(ChannelHandlerContext ctx, ChannelHandler handler) {
        if (handler == null) {
            return;
        }
        ChannelPipeline pipeline = ctx.pipeline();
        if (pipeline.context(handler) != null) {
            try {
                pipeline.remove(handler);
            } catch (RuntimeException e) {
                GracefulTlsCloseHandler.logger.debug("{} could not remove {}", ctx.channel(), handler, e);
            }
        }
    }

    /**
     * Whether {@code cause} reports a fatal alert the peer sent, rather than one our engine raised: the JDK says
     * "Received fatal alert: ...", BoringSSL names the alert's own reason ("...:SSLV3_ALERT_..." or
     * "...:TLSV1_ALERT_..."; the errors it detects itself have other names).
     */
    static boolean isPeerAlert(Throwable cause) {
        String m = cause.getMessage();
        return m != null && (m.contains("Received fatal alert") || m.contains("SSLV3_ALERT_")
                || m.contains("TLSV1_ALERT_"));
    }

    /** An IOException (SSLException included) that ends the TLS session, unwrapped from a DecoderException. */
    static Throwable sessionEndingCause(Throwable cause) {
        Throwable t = cause;
        if (t instanceof DecoderException && t.getCause() != null) {
            t = t.getCause();
        }
        // A rejected write (ours or the SslHandler's, fired for a void promise) does not end the session.
        return t instanceof IOException && !(t instanceof SslClosedEngineException) ? t : null;
    }
}
