package io.github.gracefultls;

import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.ChannelOutputShutdownEvent;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import javax.net.ssl.SSLException;
import java.nio.channels.ClosedChannelException;

/**
 * The pipeline side of {@link GracefulTlsCloseHandler}: drives the channel's one {@link Closure} from what the
 * pipeline reports. It binds to the {@link SslHandler} before it (once it is in place, behind a handler that puts it
 * there later: {@link #checkSslHandler()}), intercepts {@code close()} and
 * {@code disconnect()}, and turns the SslHandler's events, the transport's end, failures and the handler's removal
 * into the closure's inputs; it begins the closure, and decides who began it. Everything here runs on the event
 * loop. The public operations, and the hops onto the event loop, are {@link GracefulTlsCloseHandler}'s.
 */
abstract class ClosureDriver extends ChannelDuplexHandler {

    static final InternalLogger logger = InternalLoggerFactory.getInstance(GracefulTlsCloseHandler.class);

    /** The peer's close_notify has arrived, as verified by {@link #checkPeerCloseNotify()}. */
    private static final byte PEER_CLOSE_NOTIFY = 1;
    /** Set by {@link TlsCloseRelay}: the peer's close_notify ends its direction only (PeerClosePolicy.HALF_CLOSE). */
    private static final byte RELAYED = 2;
    /** Added behind a handler that puts the SslHandler in place later: not bound yet, a LateSslObserver waits. */
    private static final byte AWAITING_SSL = 4;
    /** That handler left without an SslHandler (OptionalSslHandler saw plaintext): this handler stays aside. */
    private static final byte NOT_TLS = 8;
    /** The relay shut the TCP output down without close_notify, to pass on a truncation: no warning. */
    private static final byte RELAY_TRUNCATED = 16;

    final Settings settings;
    ChannelHandlerContext ctx;
    SslHandler sslHandler;
    private byte flags;
    /** Marked by the application or a companion, read when the outcome is decided. Event loop only. */
    MessageState messageState = MessageState.UNMARKED;
    /**
     * Null; or the {@link Outcome}, when asked for before any closure; or the {@link Closure}, once one began (idle
     * channels have none). One field for both keeps an idle handler small: see {@link Outcome#of}.
     */
    volatile Object state;

    ClosureDriver(Settings settings) {
        this.settings = settings;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Pipeline life cycle
    // ------------------------------------------------------------------------------------------------------------

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        if (this.ctx != null) {
            throw new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " is not @Sharable: add one instance per channel");
        }
        ChannelHandlerContext tlsCtx = SslPipeline.tlsBefore(ctx);
        if (tlsCtx == null) {
            throw new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " needs an SslHandler before it in the pipeline, e.g. pipeline.addLast(\"ssl\", "
                    + "sslContext.newHandler(ch.alloc())).addLast(\"tls-close\", new GracefulTlsCloseHandler()), "
                    + "or a handler that puts one in place later: SniHandler (or another AbstractSniHandler) or "
                    + "OptionalSslHandler");
        }
        this.ctx = ctx;
        if (tlsCtx.handler() instanceof SslHandler) {
            this.sslHandler = (SslHandler) tlsCtx.handler();
            InputEndMeter.attach(ctx, tlsCtx);
        } else {
            flags |= AWAITING_SSL;
            LateSslObserver.attach(this, tlsCtx);
        }
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        if (ctx != this.ctx) {
            return; // refused by handlerAdded: not added, or added to a second pipeline
        }
        if (sslHandler == null) {
            if ((flags & AWAITING_SSL) != 0 && ctx.channel().isRegistered()) {
                SslPipeline.removeQuietly(ctx, LateSslObserver.find(ctx.pipeline(), this));
            }
            Outcome.fail(this, (flags & NOT_TLS) != 0 ? notTls() : removedBeforeClosure());
            return;
        }
        Closure c = closure();
        if (ctx.channel().isRegistered()) {
            // Not while the pipeline is being torn down after the channel closed: it removes them itself.
            InputEndMeter.detach(ctx, sslHandler);
            SslPipeline.removeQuietly(ctx, c);
        }
        if (c != null && c.isSending() && c.event() == null) {
            // Removed by the application mid-close: report it, and close since the TLS state is unknown.
            c.failed(new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " removed from the pipeline mid-close"));
        } else if (c == null || c.event() == null) {
            Outcome.fail(this, removedBeforeClosure());
        }
    }

    private static IllegalStateException removedBeforeClosure() {
        return new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                + " removed from the pipeline before the TLS closure");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Intercepted outbound operations
    // ------------------------------------------------------------------------------------------------------------

    @Override
    public void close(ChannelHandlerContext ctx, ChannelPromise promise) {
        closeOrDisconnect(promise, false);
    }

    @Override
    public void disconnect(ChannelHandlerContext ctx, ChannelPromise promise) {
        closeOrDisconnect(promise, true);
    }

    private void closeOrDisconnect(ChannelPromise promise, boolean disconnect) {
        checkSslHandler();
        Closure c = closure();
        if (c != null && c.phase() == Closure.CLOSED) {
            // Already closing: join it below the SslHandler, completes when the transport is closed.
            SslPipeline.close(ctx, sslHandler, promise, false);
            return;
        }
        if (!handshakeSucceeded() || !ctx.channel().isActive()) {
            // No TLS session to close (or nothing left to close): Netty's own behaviour.
            if (disconnect) {
                ctx.disconnect(promise);
            } else {
                ctx.close(promise);
            }
            return;
        }
        Http2GracePeriod.check(ctx);
        c = beginLocal(TlsCloseMode.SHUT_RDWR);
        if (c.isTerminal()) {
            // Settled at once: the peer's close_notify had arrived, and the transport was closed or handed back.
            SslPipeline.close(ctx, sslHandler, promise, disconnect);
        } else {
            c.close(promise, disconnect);
        }
    }

    /** Returns the closure, begun now by a local operation if none is under way, with our close_notify sent. */
    Closure beginLocal(TlsCloseMode mode) {
        if (closure() == null && checkPeerCloseNotify()) {
            onPeerCloseNotify(false); // it arrived, but its event is still on its way to us: the peer began
        }
        Closure c = begun(TlsCloseInitiator.LOCAL, mode, Closure.LEAVE_OPEN);
        c.start();
        return c;
    }

    /**
     * Returns the channel's one closure; if none is under way, begins it: by {@code initiator} or, if null, by
     * whoever sent close_notify first, in {@code mode}, with {@code end} to follow the outcome.
     */
    private Closure begun(TlsCloseInitiator initiator, TlsCloseMode mode, byte end) {
        Closure c = closure();
        if (c == null) {
            if (initiator == null) {
                initiator = sslHandler.engine().isOutboundDone() || SslPipeline.isRemoved(ctx, sslHandler)
                        ? TlsCloseInitiator.LOCAL : TlsCloseInitiator.PEER;
            }
            c = new Closure(this, initiator, mode);
            c.raise(end);
            Outcome.install(this, c);
        }
        return c;
    }

    /** The closure under way or concluded, null before any. */
    Closure closure() {
        Object s = state;
        return s instanceof Closure ? (Closure) s : null;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inbound events
    // ------------------------------------------------------------------------------------------------------------

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        checkSslHandler();
        if (evt instanceof SslCloseCompletionEvent) {
            SslCloseCompletionEvent e = (SslCloseCompletionEvent) evt;
            if (handshakeSucceeded()) {
                if (e.isSuccess()) {
                    // Unless it is a false signal: OpenSSL's engine reports CLOSED for any input once our own
                    // close_notify is out. The closure's guard checks again after each read.
                    if (checkPeerCloseNotify()) {
                        onPeerCloseNotify(true);
                    }
                } else if (e.cause() instanceof ClosedChannelException) {
                    // Fired by the SslHandler before it releases its buffer: an incomplete record is still there.
                    onTransportEnded(e.cause(), "the channel became inactive", true);
                } else {
                    onFailure(e.cause());
                }
            }
        } else if (evt instanceof ChannelInputShutdownEvent) {
            if (handshakeSucceeded()) {
                // The SslHandler released its buffer by now: only a meter can tell.
                onTransportEnded(null, "the peer shut down its output (FIN)", false);
            }
        } else if (evt instanceof ChannelOutputShutdownEvent) {
            warnIfOutputShutDownWithoutCloseNotify();
        } else if (evt instanceof SslHandshakeCompletionEvent) {
            SslHandshakeCompletionEvent e = (SslHandshakeCompletionEvent) evt;
            if (!e.isSuccess()) {
                Outcome.fail(this, new IllegalStateException("the TLS handshake failed", e.cause()));
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        checkSslHandler();
        Throwable io = handshakeSucceeded() ? SslPipeline.sessionEndingCause(cause) : null;
        if (io == null) {
            ctx.fireExceptionCaught(cause);
            return;
        }
        if (io instanceof SSLException) {
            onFailure(io);
        } else {
            onTransportEnded(io, "the transport failed", true);
        }
        if (logger.isDebugEnabled()) {
            logger.debug("{} exception reported in the TLS close outcome, not propagated", ctx.channel(), cause);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        checkSslHandler();
        if (handshakeSucceeded()) {
            onTransportEnded(null, "the channel became inactive", false);
        } else if ((flags & NOT_TLS) != 0) {
            Outcome.fail(this, notTls());
        } else {
            Outcome.fail(this, new IllegalStateException("the channel closed before the TLS handshake succeeded"));
        }
        Closure c = closure();
        if (c != null) {
            c.channelInactive();
        }
        ctx.fireChannelInactive();
    }

    private void onPeerCloseNotify(boolean inSslDecode) {
        PeerClosePolicy policy = (flags & RELAYED) != 0 ? PeerClosePolicy.HALF_CLOSE : settings.peerClosePolicy;
        begun(TlsCloseInitiator.PEER, null, endFor(policy)).peerCloseNotify(inSslDecode);
    }

    /** The end that follows the peer's close_notify when the peer began. */
    private static byte endFor(PeerClosePolicy policy) {
        switch (policy) {
            case CLOSE: return Closure.CLOSE;
            case REUSE_TRANSPORT: return Closure.HAND_BACK;
            default: return Closure.LEAVE_OPEN;
        }
    }

    /**
     * The transport's input ended: clean if the peer's close_notify came first, else a truncation, inside a record
     * or not as the meter, or the SslHandler's buffer if it still holds the bytes ({@code bufferHeld}), says.
     */
    void onTransportEnded(Throwable cause, String what, boolean bufferHeld) {
        if (checkPeerCloseNotify()) {
            // A clean end, whatever the transport does next. It may be seen only now: after a false close signal
            // (OpenSSL) the next confirmation is the read-complete, which some transports (io_uring) deliver after
            // the input shutdown.
            onPeerCloseNotify(false);
        } else {
            int partial = InputEndMeter.partialRecordBytes(ctx, sslHandler, bufferHeld);
            begun(null, null, Closure.CLOSE).inputEnded(
                    InputEndMeter.truncation(what + " before the peer's close_notify", partial, cause));
        }
    }

    private void onFailure(Throwable cause) {
        // With no closure of ours under way, a fatal alert the peer sent is the peer's beginning: both engines then
        // report their outbound done, which would read as ours.
        Closure c = begun(SslPipeline.isPeerAlert(cause) ? TlsCloseInitiator.PEER : null, null, Closure.CLOSE);
        if (SslPipeline.isRemoved(ctx, sslHandler) && c.isIdle() && ctx.channel().isActive()) {
            c.release(cause);
        } else {
            c.failed(cause);
        }
    }

    private void warnIfOutputShutDownWithoutCloseNotify() {
        if (handshakeSucceeded() && !sslHandler.engine().isOutboundDone() && (flags & RELAY_TRUNCATED) == 0
                && (closure() == null || closure().isIdle())) {
            logger.warn("{} TCP output was shut down without close_notify: use GracefulTlsCloseHandler"
                    + ".shutdownOutput() instead of DuplexChannel.shutdownOutput(), or the peer sees a truncation",
                    ctx.channel());
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // For TlsCloseRelay, on the event loop
    // ------------------------------------------------------------------------------------------------------------

    /** The peer's close_notify ends only its direction, whatever the policy: the relay closes the rest. */
    void relayPeerCloseAsHalfClose() {
        flags |= RELAYED;
    }

    /**
     * Ends the connection abortively, without close_notify and with a TCP reset where the transport allows it, so
     * that the peer sees a truncation. The outcome, if not known yet, is FAILED with the given cause.
     */
    void resetNow(Throwable cause) {
        if (!handshakeSucceeded()) {
            SslPipeline.resetAndClose(ctx, sslHandler, ctx.newPromise());
        } else {
            begun(TlsCloseInitiator.LOCAL, null, Closure.CLOSE).abort(cause, true);
        }
    }

    /** As {@link #resetNow}, but closes without a reset: what the transport holds is still sent, then a FIN. */
    void closeBelowTls(Throwable cause) {
        if (!handshakeSucceeded()) {
            SslPipeline.close(ctx, sslHandler, ctx.newPromise(), false);
        } else {
            begun(TlsCloseInitiator.LOCAL, null, Closure.CLOSE).abort(cause, false);
        }
    }

    /** The relay is about to shut the TCP output down without close_notify: a truncation passed on, on purpose. */
    void relayEndsOutputWithoutCloseNotify() {
        flags |= RELAY_TRUNCATED;
    }

    // ------------------------------------------------------------------------------------------------------------
    // For the Closure
    // ------------------------------------------------------------------------------------------------------------

    /** The meter and this handler leave the pipeline. */
    void leavePipeline() {
        InputEndMeter.detach(ctx, sslHandler);
        SslPipeline.removeQuietly(ctx, this);
    }

    /** After each read while a closure is under way: the peer's close_notify may have come after a false signal. */
    void recheckPeerCloseNotify() {
        if ((flags & PEER_CLOSE_NOTIFY) == 0 && checkPeerCloseNotify()) {
            onPeerCloseNotify(false);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Binding to an SslHandler put in place later
    // ------------------------------------------------------------------------------------------------------------

    /**
     * While this handler awaits its SslHandler: binds to it if the handler that was to put it in place has done so,
     * or learns that the connection is not TLS if that handler left without one. Called at each event this handler
     * sees and around each read by the {@link LateSslObserver}: {@code SniHandler} and {@code OptionalSslHandler}
     * replace themselves while decoding the first bytes, before passing them on, so the SslHandler is bound before
     * its handshake can complete.
     */
    final void checkSslHandler() {
        if ((flags & AWAITING_SSL) == 0 || ctx.isRemoved()) {
            return;
        }
        ChannelHandlerContext tlsCtx = SslPipeline.tlsBefore(ctx);
        if (tlsCtx != null && !(tlsCtx.handler() instanceof SslHandler)) {
            return; // still to come
        }
        flags &= ~AWAITING_SSL;
        if (tlsCtx == null) {
            flags |= NOT_TLS;
            logger.debug("{} no SslHandler was put in place: not TLS, {} stays out of the way", ctx.channel(),
                    GracefulTlsCloseHandler.class.getSimpleName());
            Outcome.fail(this, notTls());
            return;
        }
        sslHandler = (SslHandler) tlsCtx.handler();
        if (LateSslObserver.find(ctx.pipeline(), this) == null) {
            InputEndMeter.attach(ctx, tlsCtx); // the observer was taken out: the next best
        }
    }

    /** Whether this handler still awaits its SslHandler. */
    final boolean awaitsSslHandler() {
        return (flags & AWAITING_SSL) != 0;
    }

    /** Whether the connection turned out not to be TLS: then there is no closure, and no event. */
    final boolean isNotTls() {
        return (flags & NOT_TLS) != 0;
    }

    static IllegalStateException notTls() {
        return new IllegalStateException("the connection is not TLS: the handler before "
                + GracefulTlsCloseHandler.class.getSimpleName() + " that was to put an SslHandler in place (such as "
                + "OptionalSslHandler on plaintext) left the pipeline without one");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    /**
     * Returns whether the peer's close_notify has arrived. The SslHandler's close future alone is not enough: once
     * our close_notify is out, OpenSSL's engine reports CLOSED for any input and the future succeeds. An engine's
     * inbound side is done only after the peer's close_notify, or after closeInbound(), which the SslHandler calls
     * only on failures and when the channel goes inactive: so the check is made while the channel is active.
     */
    private boolean checkPeerCloseNotify() {
        if ((flags & PEER_CLOSE_NOTIFY) == 0 && sslHandler != null && sslHandler.sslCloseFuture().isSuccess()
                && ctx.channel().isActive() && sslHandler.engine().isInboundDone()) {
            flags |= PEER_CLOSE_NOTIFY;
        }
        return (flags & PEER_CLOSE_NOTIFY) != 0;
    }

    boolean handshakeSucceeded() {
        return sslHandler != null && sslHandler.handshakeFuture().isSuccess();
    }
}
