package io.github.gracefultls;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.GlobalEventExecutor;

import java.util.concurrent.atomic.AtomicReferenceFieldUpdater;

/**
 * The future of a channel's TLS closure, created on demand and completed with its one {@link TlsCloseEvent}. Its
 * listeners run on the channel's event loop, also when it was created before the handler knew its channel
 * ({@code closeFuture()} called before the handler was added to a pipeline).
 */
final class Outcome extends DefaultPromise<TlsCloseEvent> {

    /**
     * The handler's {@code state}: null; or its Outcome, asked for before any closure; or its {@link Closure}, once
     * one began.
     */
    private static final AtomicReferenceFieldUpdater<ClosureDriver, Object> STATE =
            AtomicReferenceFieldUpdater.newUpdater(ClosureDriver.class, Object.class, "state");
    /**
     * The closure's {@code outcome}: null; or the Outcome; or, once concluded with nobody asking, the TlsCloseEvent
     * itself, from which {@link #of} makes a completed Outcome. No promise is allocated for a closure nobody asks
     * about.
     */
    private static final AtomicReferenceFieldUpdater<Closure, Object> OUTCOME =
            AtomicReferenceFieldUpdater.newUpdater(Closure.class, Object.class, "outcome");

    private final ClosureDriver handler;

    Outcome(ClosureDriver handler) {
        this.handler = handler;
        setUncancellable();
    }

    /** The handler's outcome, created on demand, from any thread; completed at once if its closure concluded. */
    static Outcome of(ClosureDriver handler) {
        for (;;) {
            Object s = handler.state;
            if (s instanceof Closure) {
                return of(handler, (Closure) s);
            }
            if (s instanceof Outcome) {
                return (Outcome) s;
            }
            Outcome created = new Outcome(handler);
            if (STATE.compareAndSet(handler, null, created)) {
                return created;
            }
        }
    }

    private static Outcome of(ClosureDriver handler, Closure closure) {
        for (;;) {
            Object o = closure.outcome;
            if (o instanceof Outcome) {
                return (Outcome) o;
            }
            Outcome created = new Outcome(handler);
            if (o != null) {
                created.trySuccess((TlsCloseEvent) o);
            }
            if (OUTCOME.compareAndSet(closure, o, created)) {
                return created;
            }
        }
    }

    /** On the event loop: makes {@code closure} the handler's, taking over an outcome asked for before it. */
    static void install(ClosureDriver handler, Closure closure) {
        for (;;) {
            Object s = handler.state;
            closure.outcome = s; // null, or an Outcome: there was no closure before
            if (STATE.compareAndSet(handler, s, closure)) {
                return;
            }
        }
    }

    /** On the event loop: completes the closure's outcome, or keeps the event for whoever asks later. */
    static void publish(Closure closure, TlsCloseEvent event) {
        for (;;) {
            Object o = closure.outcome;
            if (o instanceof Outcome) {
                ((Outcome) o).trySuccess(event);
                return;
            }
            if (o != null || OUTCOME.compareAndSet(closure, null, event)) {
                return; // (o != null: already published, which settle() never does twice)
            }
        }
    }

    /** Fails the handler's outcome, if anyone asked for it: no event will come. */
    static void fail(ClosureDriver handler, Throwable cause) {
        Object o = handler.state;
        if (o instanceof Closure) {
            o = ((Closure) o).outcome;
        }
        if (o instanceof Outcome) {
            ((Outcome) o).tryFailure(cause);
        }
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
