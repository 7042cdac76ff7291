package io.github.gracefultls;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.GlobalEventExecutor;

/**
 * The future of a channel's TLS closure, created on demand and completed with its one {@link TlsCloseEvent}. Its
 * listeners run on the channel's event loop, also when it was created before the handler knew its channel
 * ({@code closeFuture()} called before the handler was added to a pipeline).
 */
final class Outcome extends DefaultPromise<TlsCloseEvent> {

    private final GracefulTlsCloseHandler handler;

    Outcome(GracefulTlsCloseHandler handler) {
        this.handler = handler;
        setUncancellable();
    }

    @Override
    protected EventExecutor executor() {
        ChannelHandlerContext ctx = handler.ctx;
        return ctx != null ? ctx.executor() : GlobalEventExecutor.INSTANCE;
    }

    /**
     * On the event loop: completes this outcome with the event if it is known, or fails it if no event can come
     * (the handshake failed, the channel closed before it succeeded, the handler left before any closure).
     */
    void sync(ChannelHandlerContext ctx, SslHandler ssl, TlsCloseEvent event) {
        if (isDone()) {
            return;
        }
        if (event != null) {
            trySuccess(event);
        } else if (ssl != null && ssl.handshakeFuture().cause() != null) {
            tryFailure(new IllegalStateException("the TLS handshake failed", ssl.handshakeFuture().cause()));
        } else if (!ctx.channel().isActive() && ctx.channel().closeFuture().isDone()
                && (ssl == null || !ssl.handshakeFuture().isSuccess())) {
            tryFailure(new IllegalStateException("the channel closed before the TLS handshake succeeded"));
        } else if (ctx.isRemoved()) {
            tryFailure(new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " removed from the pipeline before the TLS closure"));
        }
    }
}
