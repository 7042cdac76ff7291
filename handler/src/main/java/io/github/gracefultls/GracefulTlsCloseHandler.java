package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.ChannelOutputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.ImmediateEventExecutor;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReferenceFieldUpdater;

/**
 * Closes TLS connections the way GnuTLS's {@code gnutls_bye()} does, and says how each one ended.
 *
 * <p>Netty's {@link SslHandler} sends {@code close_notify} but cannot tell a clean end of the peer's stream from an
 * attacker cutting it (a truncation attack), cannot half-close TLS and TCP together, and cannot hand the transport
 * back after a TLS closure. This handler, placed right after the {@code SslHandler}, does all three:
 *
 * <ul>
 *   <li>{@link Channel#close()} and {@link Channel#disconnect()} become {@link TlsCloseMode#SHUT_RDWR}: writes
 *       already issued are flushed, our {@code close_notify} follows them, we wait up to
 *       {@link Builder#closeNotifyReadTimeout(Duration) closeNotifyReadTimeout} for the peer's, then the transport
 *       closes.</li>
 *   <li>{@link #bye(TlsCloseMode)} does the same but keeps the channel open: after a clean closure the
 *       {@code SslHandler} and this handler leave the pipeline and the transport carries plaintext.</li>
 *   <li>{@link #shutdownOutput()} sends {@code close_notify}, then a TCP FIN, and keeps reading until the peer's
 *       {@code close_notify} (RFC 8446 §6.1 half-close).</li>
 *   <li>When the peer begins, its {@code close_notify} is handled by the {@link PeerClosePolicy}.</li>
 * </ul>
 *
 * <p>Every channel whose handshake succeeded gets exactly one {@link TlsCloseEvent}, fired as a user event before
 * {@code channelInactive} reaches the handlers after this one:
 *
 * <table class="striped">
 *   <caption>Outcomes</caption>
 *   <tr><th>{@link TlsCloseStatus}</th><th>when</th><th>then</th></tr>
 *   <tr><td>{@code CLOSE_NOTIFY_RECEIVED}</td><td>the peer's {@code close_notify} arrived</td>
 *       <td>{@code close()}: the transport closes; {@code bye()}: the transport is left for reuse</td></tr>
 *   <tr><td>{@code TIMED_OUT}</td><td>our {@code close_notify} could not be flushed in time, or the peer's did not
 *       arrive in time</td><td>the channel is closed</td></tr>
 *   <tr><td>{@code TRUNCATED}</td><td>the transport's input ended (FIN, RST, inactive) before the peer's
 *       {@code close_notify}</td><td>the channel is closed</td></tr>
 *   <tr><td>{@code FAILED}</td><td>a local failure: the {@code close_notify} write failed, an {@code SSLException},
 *       a handler removed mid-close</td><td>the channel is closed</td></tr>
 * </table>
 *
 * <h2>Example</h2>
 * <pre>
 * public class MyInitializer extends ChannelInitializer&lt;SocketChannel&gt; {
 *     public void initChannel(SocketChannel ch) {
 *         ch.config().setAllowHalfClosure(true); // so that a FIN without close_notify is seen as TRUNCATED
 *         ch.pipeline().addLast("ssl", sslContext.newHandler(ch.alloc()));
 *         ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
 *         ch.pipeline().addLast("app", new MyHandler());
 *     }
 * }
 *
 * public class MyHandler extends ChannelInboundHandlerAdapter {
 *     public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
 *         if (evt instanceof TlsCloseEvent) {
 *             TlsCloseEvent e = (TlsCloseEvent) evt;
 *             if (!e.isClean()) {
 *                 // the response may be incomplete: do not treat it as final
 *             }
 *         }
 *         ctx.fireUserEventTriggered(evt);
 *     }
 * }
 * </pre>
 *
 * <h2>Futures</h2>
 * The futures of {@link #bye(TlsCloseMode)}, {@link #shutdownOutput()} and {@link #closeFuture()} succeed with the
 * {@link TlsCloseEvent} whatever its status: a timeout or a truncation is an outcome, not an error. They fail only
 * when the call itself is invalid: before the handshake succeeded, or without a {@code SslHandler}. A second
 * {@code close()}, {@code bye()} or {@code shutdownOutput()} joins the closure under way.
 *
 * <h2>Exceptions</h2>
 * After the handshake, an {@link IOException} or {@link SSLException} that ends the TLS session (a reset, a fatal
 * alert, garbage after {@code close_notify}) is reported as the event's {@link TlsCloseEvent#cause() cause} and not
 * propagated to the handlers after this one.
 *
 * <h2>Threading</h2>
 * {@link #bye(TlsCloseMode)}, {@link #shutdownOutput()}, {@link #shutdownOutput(Channel)} and {@link #closeFuture()}
 * may be called from any thread; the work runs on the channel's event loop, as does everything else.
 *
 * <p>This handler is not {@link ChannelHandler.Sharable}: use one instance per channel. Leave the
 * {@code SslHandler}'s own {@link SslHandler#setCloseNotifyReadTimeout(long, TimeUnit) closeNotifyReadTimeout} at 0:
 * this handler does the waiting.
 */
public final class GracefulTlsCloseHandler extends ChannelDuplexHandler {

    /** Default time allowed to flush our {@code close_notify}: {@value} ms. */
    public static final long DEFAULT_CLOSE_NOTIFY_FLUSH_TIMEOUT_MILLIS = 3000;
    /** Default time {@link TlsCloseMode#SHUT_RDWR} waits for the peer's {@code close_notify}: {@value} ms. */
    public static final long DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS = 3000;

    private static final InternalLogger logger = InternalLoggerFactory.getInstance(GracefulTlsCloseHandler.class);

    private static final Settings DEFAULT_SETTINGS = new Settings(
            TimeUnit.MILLISECONDS.toNanos(DEFAULT_CLOSE_NOTIFY_FLUSH_TIMEOUT_MILLIS),
            TimeUnit.MILLISECONDS.toNanos(DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS),
            0, PeerClosePolicy.CLOSE);

    private static final int UNKNOWN = Integer.MIN_VALUE;

    @SuppressWarnings("rawtypes")
    private static final AtomicReferenceFieldUpdater<GracefulTlsCloseHandler, Promise> OUTCOME_UPDATER =
            AtomicReferenceFieldUpdater.newUpdater(GracefulTlsCloseHandler.class, Promise.class, "outcome");

    /** Replaced only by TlsCloseRelay, on the event loop, to switch the peer policy to HALF_CLOSE. */
    private Settings settings;
    private ChannelHandlerContext ctx;
    private SslHandler sslHandler;
    private ChannelHandlerContext sslCtx;
    /** What counts the bytes of a record cut by the end of the input, when the SslHandler's buffer cannot. */
    private InputEndWatcher observer;
    /** Allocated when a closure begins; idle channels have none. */
    private Closure closure;
    /** The peer's close_notify has arrived, as verified by checkPeerCloseNotify(). */
    private boolean peerCloseNotify;
    /** Handling the SslHandler's close event, that is inside its decode(). */
    private boolean inSslCloseEvent;
    /** Bytes of an incomplete TLS record when the transport's input ended, -1 if unknown, or UNKNOWN. */
    private int undecodedAtInputEnd = UNKNOWN;
    /** Completed with the one TlsCloseEvent of this channel; created on demand. */
    private volatile Promise<TlsCloseEvent> outcome;

    /**
     * Creates a handler with the defaults: 3 s to flush our {@code close_notify}, 3 s to wait for the peer's under
     * {@link TlsCloseMode#SHUT_RDWR}, no deadline under {@link TlsCloseMode#SHUT_WR}, {@link PeerClosePolicy#CLOSE}.
     */
    public GracefulTlsCloseHandler() {
        this(DEFAULT_SETTINGS);
    }

    private GracefulTlsCloseHandler(Settings settings) {
        this.settings = settings;
    }

    /**
     * Returns a builder for a handler with other timeouts or another {@link PeerClosePolicy}.
     *
     * @return a new builder, holding the defaults
     */
    public static Builder builder() {
        return new Builder();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Public operations
    // ------------------------------------------------------------------------------------------------------------

    /**
     * Terminates the TLS session like {@code gnutls_bye(session, how)}, without closing the channel on success.
     *
     * <p>{@link TlsCloseMode#SHUT_RDWR} sends {@code close_notify} after the writes already issued, then waits up to
     * {@code closeNotifyReadTimeout} for the peer's, releasing application data that arrives meanwhile.
     * {@link TlsCloseMode#SHUT_WR} sends {@code close_notify} and keeps delivering application data until the peer's
     * {@code close_notify}, waiting up to {@code halfCloseTimeout} (zero: no deadline).
     *
     * <p>On a clean outcome the {@code SslHandler} and this handler leave the pipeline and the channel stays open:
     * bytes that followed the peer's {@code close_notify} reach the next handler as plaintext. On any other outcome
     * the channel is closed, since its state cannot be trusted.
     *
     * @param how {@link TlsCloseMode#SHUT_RDWR} to wait for the peer's {@code close_notify}, or
     *        {@link TlsCloseMode#SHUT_WR} to keep reading until it arrives
     * @return a future that succeeds with the {@link TlsCloseEvent} whatever its status, and fails only with an
     *         {@link IllegalStateException} when called before the handshake succeeded
     */
    public Future<TlsCloseEvent> bye(TlsCloseMode how) {
        Objects.requireNonNull(how, "how");
        return submit(how == TlsCloseMode.SHUT_RDWR ? Op.BYE_RDWR : Op.BYE_WR);
    }

    /**
     * Sends {@code close_notify} after the writes already issued, then shuts down the TCP output (FIN) once it is
     * flushed, and keeps reading. When the peer's {@code close_notify} or the end of its stream arrives, or
     * {@code halfCloseTimeout} expires, the channel is closed. On a channel that is not a {@link DuplexChannel} it
     * behaves as {@link #bye(TlsCloseMode) bye(SHUT_WR)}.
     *
     * @return a future that succeeds with the {@link TlsCloseEvent} whatever its status
     */
    public Future<TlsCloseEvent> shutdownOutput() {
        return submit(Op.SHUTDOWN_OUTPUT);
    }

    /**
     * Calls {@link #shutdownOutput()} on the {@code GracefulTlsCloseHandler} in the channel's pipeline.
     *
     * @param channel the channel whose pipeline holds the handler
     * @return the future of {@link #shutdownOutput()}, or a failed future if the pipeline has no such handler
     */
    public static Future<TlsCloseEvent> shutdownOutput(Channel channel) {
        Objects.requireNonNull(channel, "channel");
        GracefulTlsCloseHandler handler = channel.pipeline().get(GracefulTlsCloseHandler.class);
        if (handler == null) {
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(new IllegalStateException(
                    "no " + GracefulTlsCloseHandler.class.getSimpleName() + " in the pipeline of " + channel));
        }
        return handler.shutdownOutput();
    }

    /**
     * Returns the future of this channel's TLS closure, whoever begins it. It succeeds with the one
     * {@link TlsCloseEvent} of the channel, once the event has been fired through the pipeline, and fails with an
     * {@link IllegalStateException} if the channel ends without a successful handshake or this handler leaves the
     * pipeline before any closure.
     *
     * @return the future of this channel's TLS closure
     */
    public Future<TlsCloseEvent> closeFuture() {
        Promise<TlsCloseEvent> p = outcome();
        ChannelHandlerContext ctx = this.ctx;
        if (!p.isDone() && ctx != null) {
            // The outcome is created on demand: fail it if it can no longer come. The state is read on the event
            // loop, where a closure that is concluding cannot be seen half done.
            EventExecutor executor = ctx.executor();
            if (executor.inEventLoop()) {
                failIfNoOutcomeCanCome(p);
            } else {
                try {
                    executor.execute(() -> failIfNoOutcomeCanCome(p));
                } catch (RejectedExecutionException e) {
                    failIfNoOutcomeCanCome(p); // the loop is gone, and so is anything that could still change
                }
            }
        }
        return p;
    }

    private void failIfNoOutcomeCanCome(Promise<TlsCloseEvent> p) {
        Closure c = closure;
        if (p.isDone() || c != null && c.event != null) {
            return;
        }
        SslHandler ssl = sslHandler;
        if (ssl != null && ssl.handshakeFuture().cause() != null) {
            p.tryFailure(new IllegalStateException("the TLS handshake failed", ssl.handshakeFuture().cause()));
        } else if (!ctx.channel().isActive() && ctx.channel().closeFuture().isDone()
                && (ssl == null || !ssl.handshakeFuture().isSuccess())) {
            p.tryFailure(new IllegalStateException("the channel closed before the TLS handshake succeeded"));
        } else if (ctx.isRemoved()) {
            p.tryFailure(new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " removed from the pipeline before the TLS closure"));
        }
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
        ChannelHandlerContext sslCtx = findSslHandlerBefore(ctx);
        if (sslCtx == null) {
            throw new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " needs an SslHandler before it in the pipeline, e.g. pipeline.addLast(\"ssl\", "
                    + "sslContext.newHandler(ch.alloc())).addLast(\"tls-close\", new GracefulTlsCloseHandler())");
        }
        this.ctx = ctx;
        this.sslCtx = sslCtx;
        this.sslHandler = (SslHandler) sslCtx.handler();
        observer = newWatcher(ctx, sslHandler);
        if (observer instanceof ChannelHandler) {
            ctx.pipeline().addBefore(sslCtx.name(), null, (ChannelHandler) observer);
        }
    }

    /**
     * Returns what counts the bytes of a record cut by the end of the input, or null when the SslHandler's buffer
     * will tell. With an engine the SslHandler feeds whole records (the JDK's), an incomplete record stays in that
     * buffer, and when the channel goes inactive the SslHandler's close event reaches this handler before the buffer
     * is released: nothing is needed. A FIN under ALLOW_HALF_CLOSURE reaches this handler only after the release,
     * and OpenSSL (and Conscrypt) take partial records into their own buffers: there the record framing is followed,
     * from the first handshake record on, by a {@link RecordFraming} set in front of the SslHandler's cumulator, which
     * adds nothing to the pipeline. Where the cumulator or the buffer cannot be read (the module path on Netty 4.2),
     * or the framing cannot be known (a handler added later) and the buffer can tell, a {@link TransportObserver}
     * before the SslHandler does the work.
     */
    private InputEndWatcher newWatcher(ChannelHandlerContext ctx, SslHandler ssl) {
        boolean enginePartial = buffersPartialRecords(ssl.engine());
        boolean halfClosure = Boolean.TRUE.equals(ctx.channel().config().getOption(ChannelOption.ALLOW_HALF_CLOSURE));
        boolean bufferReadable = SslHandlerAccess.isAvailable();
        if (!enginePartial && !halfClosure && bufferReadable) {
            return null;
        }
        // Aligned if nothing of the stream can have been missed. When the buffer cannot be read (-1), a handler
        // added before the handshake completed is taken to be added in initChannel, before the first read.
        boolean aligned = !ssl.handshakeFuture().isDone() && SslHandlerAccess.undecodedBytes(ssl) <= 0;
        ByteToMessageDecoder.Cumulator cumulator = SslHandlerAccess.cumulator(ssl);
        if (cumulator != null && (aligned || enginePartial)) {
            RecordFraming framing = new RecordFraming(cumulator, aligned);
            ssl.setCumulator(framing);
            return framing;
        }
        if (enginePartial || !bufferReadable) {
            return new TransportObserver.Following(this, aligned);
        }
        return new TransportObserver(this); // the JDK's buffer, read before the SslHandler hears of the FIN
    }

    /** Whether the SslHandler hands this engine partial records, as it does for the engines Netty runs natively. */
    private static boolean buffersPartialRecords(SSLEngine engine) {
        for (Class<?> c = engine.getClass(); c != null; c = c.getSuperclass()) {
            String name = c.getName();
            if (name.equals("io.netty.handler.ssl.ReferenceCountedOpenSslEngine")
                    || name.equals("io.netty.handler.ssl.ConscryptAlpnSslEngine")) {
                return true;
            }
        }
        return false;
    }

    private static ChannelHandlerContext findSslHandlerBefore(ChannelHandlerContext ctx) {
        ChannelPipeline pipeline = ctx.pipeline();
        ChannelHandlerContext found = null;
        for (Map.Entry<String, ChannelHandler> e : pipeline) {
            if (e.getValue() == ctx.handler()) {
                return found;
            }
            if (e.getValue() instanceof SslHandler) {
                found = pipeline.context(e.getValue());
            }
        }
        return null;
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        if (sslHandler == null) {
            return;
        }
        Closure c = closure;
        if (ctx.channel().isRegistered()) {
            // Not while the pipeline is being torn down after the channel closed: it removes them itself.
            detachObserver();
            if (c != null && c.guard != null) {
                removeQuietly(c.guard);
            }
        }
        if (c != null && !c.finished && c.event == null && c.localStarted) {
            // Removed by the application mid-close: report it, and close since the TLS state is unknown.
            conclude(c, TlsCloseStatus.FAILED, new IllegalStateException(
                    GracefulTlsCloseHandler.class.getSimpleName() + " removed from the pipeline mid-close"));
            c.closeTransport = true;
            advance();
        } else if (c == null || c.event == null) {
            failOutcome(new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " removed from the pipeline before the TLS closure"));
        }
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
        Closure c = closure;
        if (c != null && c.transportCloseRequested) {
            // Already closing: join it below the SslHandler, completes when the transport is closed.
            closeTarget().close(promise);
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
        c = begin(TlsCloseMode.SHUT_RDWR);
        if (c.finished) {
            // Settled inside begin(): the outcome was known at once, and the transport closed or handed back.
            if (disconnect) {
                closeTarget().disconnect(promise);
            } else {
                closeTarget().close(promise);
            }
            return;
        }
        if (c.closePromises == null) {
            c.closePromises = new ArrayList<>(2);
            c.disconnect = disconnect;
        }
        c.closePromises.add(promise);
        c.closeTransport = true;
        waitForPeerWithReadTimeout(c);
        advance();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inbound events
    // ------------------------------------------------------------------------------------------------------------

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof SslCloseCompletionEvent) {
            SslCloseCompletionEvent e = (SslCloseCompletionEvent) evt;
            if (handshakeSucceeded()) {
                if (e.isSuccess()) {
                    if (checkPeerCloseNotify()) {
                        inSslCloseEvent = true;
                        try {
                            onPeerCloseNotify();
                        } finally {
                            inSslCloseEvent = false;
                        }
                    }
                    // Otherwise a false signal: OpenSSL's engine reports CLOSED for any input once our own
                    // close_notify is out. The ClosingGuard checks again after each read.
                } else if (e.cause() instanceof ClosedChannelException) {
                    // Fired by the SslHandler before it releases its buffer: an incomplete record is still there.
                    transportInputEnding();
                    onTransportEnded(e.cause(), "the channel became inactive");
                } else {
                    onFailure(e.cause());
                }
            }
        } else if (evt instanceof ChannelInputShutdownEvent) {
            if (observer instanceof RecordFraming) {
                // The framing it followed still holds; the SslHandler's buffer (what anything else would read) is
                // released by now, and a TransportObserver has counted before the SslHandler released it.
                transportInputEnding();
            }
            if (handshakeSucceeded()) {
                onTransportEnded(null, "the peer shut down its output (FIN)");
            }
        } else if (evt instanceof ChannelOutputShutdownEvent) {
            warnIfOutputShutDownWithoutCloseNotify();
        } else if (evt instanceof SslHandshakeCompletionEvent) {
            SslHandshakeCompletionEvent e = (SslHandshakeCompletionEvent) evt;
            if (!e.isSuccess()) {
                failOutcome(new IllegalStateException("the TLS handshake failed", e.cause()));
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (handshakeSucceeded()) {
            Throwable io = sessionEndingCause(cause);
            if (io != null) {
                if (io instanceof SSLException) {
                    onFailure(io);
                } else {
                    transportInputEnding();
                    onTransportEnded(io, "the transport failed");
                }
                if (logger.isDebugEnabled()) {
                    logger.debug("{} exception reported in the TLS close outcome, not propagated", ctx.channel(),
                            cause);
                }
                return;
            }
        }
        ctx.fireExceptionCaught(cause);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (handshakeSucceeded()) {
            if (peerCloseNotify) {
                onPeerCloseNotify();
            } else {
                onTransportEnded(null, "the channel became inactive");
            }
        } else {
            failOutcome(new IllegalStateException("the channel closed before the TLS handshake succeeded"));
        }
        Closure c = closure;
        if (c != null) {
            cancelTimers(c);
            if (!c.finished) {
                advance();
            }
        }
        ctx.fireChannelInactive();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Called by ClosingGuard and TransportObserver
    // ------------------------------------------------------------------------------------------------------------

    /** Used by TlsCloseRelay: the peer's close_notify ends only its direction; the relay closes the rest. */
    void relayPeerCloseAsHalfClose() {
        Settings s = settings;
        if (s.peerClosePolicy != PeerClosePolicy.HALF_CLOSE) {
            settings = new Settings(s.flushTimeoutNanos, s.readTimeoutNanos, s.halfCloseTimeoutNanos,
                    PeerClosePolicy.HALF_CLOSE);
        }
    }

    /**
     * Used by TlsCloseRelay: ends the connection abortively, without close_notify and with a TCP reset where the
     * transport allows it, so that the peer sees a truncation. The outcome, if not already known, is FAILED with
     * the given cause. Must be called on the event loop.
     */
    void abort(Throwable cause) {
        if (!handshakeSucceeded()) {
            resetAndClose(ctx.newPromise(), false);
            return;
        }
        Closure c = closure;
        if (c == null) {
            c = closure = new Closure(TlsCloseInitiator.LOCAL, null, now());
        }
        if (c.event == null) {
            conclude(c, TlsCloseStatus.FAILED, cause);
        }
        if (c.finished && (c.transportCloseRequested || !ctx.channel().isActive())) {
            return;
        }
        c.finished = true;
        c.transportCloseRequested = true;
        cancelTimers(c);
        resetAndClose(newClosePromise(c), true);
    }

    private void resetAndClose(ChannelPromise p, boolean belowSslHandler) {
        Channel ch = ctx.channel();
        if (ch.isActive()) {
            try {
                ch.config().setOption(ChannelOption.SO_LINGER, 0);
            } catch (RuntimeException e) {
                logger.debug("{} cannot set SO_LINGER 0: closing without a reset", ch, e);
            }
        }
        (belowSslHandler ? closeTarget() : ctx).close(p);
    }

    boolean isDiscardingInbound() {
        Closure c = closure;
        return c != null && c.discard && !c.finished;
    }

    void addDiscardedBytes(long n) {
        closure.discarded += n;
    }

    void transportInputEnding() {
        if (undecodedAtInputEnd == UNKNOWN && sslHandler != null) {
            InputEndWatcher o = observer;
            undecodedAtInputEnd = o != null ? o.partialRecordBytes(sslHandler)
                    : SslHandlerAccess.undecodedBytes(sslHandler);
        }
    }

    /** Called by the ClosingGuard after each read while our closure is under way. */
    void recheckPeerCloseNotify() {
        Closure c = closure;
        if (c != null && !c.finished && !peerCloseNotify && checkPeerCloseNotify()) {
            onPeerCloseNotify();
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // The closure
    // ------------------------------------------------------------------------------------------------------------

    private enum Op {
        BYE_RDWR("bye(SHUT_RDWR)"), BYE_WR("bye(SHUT_WR)"), SHUTDOWN_OUTPUT("shutdownOutput()");

        final String display;

        Op(String display) {
            this.display = display;
        }
    }

    /** State of the one closure of this channel. Only touched on the event loop. */
    private static final class Closure {
        final TlsCloseInitiator initiator;
        final TlsCloseMode mode;
        final long startNanos;
        /** We called SslHandler.closeOutbound(). */
        boolean localStarted;
        ChannelFuture closeNotifyFuture;
        /** Our close_notify was flushed, failed, or could not be flushed in time. */
        boolean flushSettled;
        boolean flushSucceeded;
        /** SHUT_RDWR: release inbound application data and count it. */
        boolean discard;
        /** close(), disconnect(), shutdownOutput(), policy CLOSE, or a failure: close the transport at the end. */
        boolean closeTransport;
        boolean disconnect;
        /** shutdownOutput(): FIN once our close_notify is flushed. */
        boolean finAfterFlush;
        /** Policy REUSE_TRANSPORT or bye(): hand the transport back on a clean outcome. */
        boolean reuse;
        boolean transportCloseRequested;
        /** The transport was closed or handed back: nothing more to do. */
        boolean finished;
        long discarded;
        long waitDeadlineNanos;
        ScheduledFuture<?> flushTimer;
        ScheduledFuture<?> waitTimer;
        List<ChannelPromise> closePromises;
        ClosingGuard guard;
        TlsCloseEvent event;

        Closure(TlsCloseInitiator initiator, TlsCloseMode mode, long startNanos) {
            this.initiator = initiator;
            this.mode = mode;
            this.startNanos = startNanos;
        }
    }

    private Future<TlsCloseEvent> submit(Op op) {
        ChannelHandlerContext ctx = this.ctx;
        if (ctx == null) {
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(new IllegalStateException(
                    op.display + " called on a " + GracefulTlsCloseHandler.class.getSimpleName()
                    + " that is not in a pipeline"));
        }
        EventExecutor executor = ctx.executor();
        Promise<TlsCloseEvent> promise = executor.newPromise();
        if (executor.inEventLoop()) {
            run(op, promise);
        } else {
            try {
                executor.execute(() -> run(op, promise));
            } catch (RejectedExecutionException e) {
                promise.tryFailure(e);
            }
        }
        return promise;
    }

    private void run(Op op, Promise<TlsCloseEvent> promise) {
        Closure c = closure;
        if (c != null && c.event != null && c.finished) {
            promise.trySuccess(c.event);
            return;
        }
        if (!handshakeSucceeded()) {
            Throwable cause = sslHandler == null ? null : sslHandler.handshakeFuture().cause();
            promise.tryFailure(new IllegalStateException(op.display + " called before the TLS handshake succeeded"
                    + (cause == null ? "" : ": it failed"), cause));
            return;
        }
        if (ctx.isRemoved()) {
            promise.tryFailure(new IllegalStateException(op.display + " called on a "
                    + GracefulTlsCloseHandler.class.getSimpleName() + " that was removed from its pipeline"));
            return;
        }
        if (!ctx.channel().isActive() && (c == null || c.event == null)) {
            onTransportEnded(null, "the channel became inactive");
            c = closure;
        } else {
            c = begin(op == Op.BYE_WR || op == Op.SHUTDOWN_OUTPUT ? TlsCloseMode.SHUT_WR : TlsCloseMode.SHUT_RDWR);
            switch (op) {
                case BYE_RDWR:
                    c.reuse = true;
                    waitForPeerWithReadTimeout(c);
                    break;
                case BYE_WR:
                    c.reuse = true;
                    break;
                case SHUTDOWN_OUTPUT:
                    if (ctx.channel() instanceof DuplexChannel) {
                        if (!Boolean.TRUE.equals(ctx.channel().config().getOption(ChannelOption.ALLOW_HALF_CLOSURE))) {
                            logger.warn("{} shutdownOutput() on a channel whose ALLOW_HALF_CLOSURE is off: the peer's "
                                    + "FIN will close it instead of ending its input only; set "
                                    + "ChannelOption.ALLOW_HALF_CLOSURE to true for a TLS half-close", ctx.channel());
                        }
                        c.closeTransport = true;
                        c.finAfterFlush = true;
                        if (c.flushSucceeded) {
                            shutdownTcpOutput();
                        }
                    } else {
                        logger.debug("{} is not a DuplexChannel: shutdownOutput() behaves as bye(SHUT_WR)",
                                ctx.channel());
                        c.reuse = true;
                    }
                    break;
                default:
                    throw new Error(op.name());
            }
        }
        link(promise);
        advance();
    }

    /** Begins a local closure, or joins the one under way, and makes sure our close_notify is on its way. */
    private Closure begin(TlsCloseMode mode) {
        Closure c = closure;
        if (c == null && checkPeerCloseNotify()) {
            // The peer's close_notify has arrived but its event is still on its way to us: the peer began.
            onPeerCloseNotify();
            c = closure;
        }
        if (c == null) {
            c = closure = new Closure(TlsCloseInitiator.LOCAL, mode, now());
        }
        if (!c.localStarted && !c.finished) {
            sendCloseNotify(c);
        }
        return c;
    }

    private void sendCloseNotify(Closure c) {
        c.localStarted = true;
        if (c.guard == null && !ctx.isRemoved()) {
            c.guard = new ClosingGuard(this);
            ctx.pipeline().addAfter(ctx.name(), null, c.guard);
        }
        ChannelFuture f;
        try {
            // SslHandler.closeOutbound() closes the engine before it wraps the writes already queued, which would
            // then fail: wrap them first, so that they go out in full ahead of our close_notify.
            ctx.flush();
            f = sslHandler.closeOutbound();
        } catch (RuntimeException e) {
            f = ctx.newFailedFuture(e);
        }
        c.closeNotifyFuture = f;
        if (!f.isDone()) {
            c.flushTimer = ctx.executor().schedule(() -> onFlushTimeout(c), settings.flushTimeoutNanos,
                    TimeUnit.NANOSECONDS);
        }
        f.addListener(future -> onCloseNotifyFlushed(c, (ChannelFuture) future));
    }

    private void onCloseNotifyFlushed(Closure c, ChannelFuture f) {
        if (c.flushSettled) {
            return;
        }
        c.flushSettled = true;
        cancel(c.flushTimer);
        c.flushTimer = null;
        if (f.isSuccess()) {
            c.flushSucceeded = true;
            if (c.finAfterFlush) {
                shutdownTcpOutput();
            }
            if (c.event == null) {
                armWaitTimer(c);
            }
        } else if (c.event == null) {
            Throwable cause = f.cause();
            if (ctx.channel().isActive()) {
                conclude(c, TlsCloseStatus.FAILED, cause);
            } else {
                conclude(c, TlsCloseStatus.TRUNCATED, truncation("the transport failed while sending close_notify",
                        cause));
            }
            c.closeTransport = true;
        }
        advance();
    }

    private void onFlushTimeout(Closure c) {
        if (c.flushSettled || c.closeNotifyFuture.isDone()) {
            return;
        }
        c.flushSettled = true;
        c.flushTimer = null;
        if (c.event == null) {
            conclude(c, TlsCloseStatus.TIMED_OUT, new TimeoutException(
                    "close_notify could not be flushed within " + format(settings.flushTimeoutNanos)));
        }
        c.closeTransport = true;
        advance();
    }

    private void waitForPeerWithReadTimeout(Closure c) {
        if (c.event != null) {
            return;
        }
        c.discard = true;
        if (c.flushSucceeded) {
            armWaitTimer(c);
        }
    }

    /** Starts, or brings forward, the deadline for the peer's close_notify. Called once our close_notify is out. */
    private void armWaitTimer(Closure c) {
        long timeout = c.discard ? settings.readTimeoutNanos : settings.halfCloseTimeoutNanos;
        if (timeout <= 0) {
            return;
        }
        long deadline = now() + timeout;
        if (c.waitTimer != null && c.waitDeadlineNanos - deadline <= 0) {
            return;
        }
        cancel(c.waitTimer);
        c.waitDeadlineNanos = deadline;
        c.waitTimer = ctx.executor().schedule(() -> onWaitTimeout(c, timeout), timeout, TimeUnit.NANOSECONDS);
        if (!ctx.channel().config().isAutoRead()) {
            ctx.read();
        }
    }

    private void onWaitTimeout(Closure c, long timeoutNanos) {
        c.waitTimer = null;
        if (c.event == null) {
            conclude(c, TlsCloseStatus.TIMED_OUT, new TimeoutException(
                    "the peer's close_notify did not arrive within " + format(timeoutNanos)));
            c.closeTransport = true;
            advance();
        }
    }

    private void onPeerCloseNotify() {
        Closure c = closure;
        if (c == null) {
            c = closure = new Closure(TlsCloseInitiator.PEER, null, now());
            switch (settings.peerClosePolicy) {
                case CLOSE:
                    c.closeTransport = true;
                    break;
                case REUSE_TRANSPORT:
                    c.reuse = true;
                    break;
                case HALF_CLOSE:
                default:
                    break;
            }
            conclude(c, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, null);
        } else if (c.event == null) {
            conclude(c, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, null);
        }
        advance();
    }

    private void onTransportEnded(Throwable cause, String what) {
        if (checkPeerCloseNotify()) {
            // The peer's close_notify came first: a clean end, whatever the transport does next. It may be seen
            // only now: after a false close signal (OpenSSL) the next confirmation is the read-complete, which
            // some transports (io_uring) deliver after the input shutdown.
            Closure c = closure;
            if (c == null || c.event == null) {
                onPeerCloseNotify();
            }
            return;
        }
        Closure c = closure;
        if (c == null) {
            TlsCloseInitiator initiator = sslHandler.engine().isOutboundDone()
                    ? TlsCloseInitiator.LOCAL : TlsCloseInitiator.PEER;
            c = closure = new Closure(initiator, null, now());
        }
        if (c.event == null) {
            conclude(c, TlsCloseStatus.TRUNCATED, truncation(what + " before the peer's close_notify", cause));
        }
        c.closeTransport = true;
        advance();
    }

    private void onFailure(Throwable cause) {
        Closure c = closure;
        if (c == null) {
            boolean local = sslHandler.engine().isOutboundDone() || sslHandlerRemoved();
            c = closure = new Closure(local ? TlsCloseInitiator.LOCAL : TlsCloseInitiator.PEER, null, now());
        }
        if (c.event == null) {
            conclude(c, TlsCloseStatus.FAILED, cause);
        }
        if (sslHandlerRemoved() && !c.localStarted && ctx.channel().isActive()) {
            // The application removed the SslHandler outside any closure: it wants the transport as it is.
            c.finished = true;
            detachObserver();
            removeQuietly(this);
            return;
        }
        c.closeTransport = true;
        advance();
    }

    private TlsTruncationException truncation(String what, Throwable cause) {
        int undecoded = undecodedAtInputEnd == UNKNOWN ? -1 : undecodedAtInputEnd;
        String where;
        if (undecoded > 0) {
            where = "inside a TLS record (" + undecoded + " bytes of it had arrived)";
        } else if (undecoded == 0) {
            where = "at a TLS record boundary";
        } else {
            where = "(record boundary unknown)";
        }
        return new TlsTruncationException(what + ", " + where, undecoded, cause);
    }

    private void conclude(Closure c, TlsCloseStatus status, Throwable cause) {
        Duration elapsed = c.initiator == TlsCloseInitiator.PEER && c.mode == null
                ? Duration.ZERO : Duration.ofNanos(Math.max(0, now() - c.startNanos));
        TlsCloseEvent event = new TlsCloseEvent(status, c.initiator, c.mode, elapsed, cause, c.discarded);
        c.event = event;
        cancel(c.waitTimer);
        c.waitTimer = null;
        if (logger.isDebugEnabled()) {
            logger.debug("{} {}", ctx.channel(), event);
        }
        if (event.isClean() && c.reuse && !c.closeTransport) {
            // The transport is plaintext before anyone hears of the outcome: a listener of bye() or a handler
            // reacting to the event can write plaintext at once (FTPS CCC, LDAP TLS removal), and bytes that
            // followed the peer's close_notify reach the next handler after the event. Outside the SslHandler's
            // decode() (the close_notify was seen after a read, not in its close event), removing the SslHandler
            // delivers those bytes at once, so it is removed after the event and before the futures complete.
            boolean inDecode = inSslCloseEvent;
            handBackTransport(c, inDecode);
            ctx.fireUserEventTriggered(event);
            if (!inDecode) {
                removeSslHandler();
            }
            outcome().trySuccess(event);
            return;
        }
        ctx.fireUserEventTriggered(event);
        outcome().trySuccess(event);
    }

    /** Carries out what follows a known outcome: hand the transport back, or close it. Idempotent. */
    private void advance() {
        Closure c = closure;
        if (c == null || c.event == null || c.finished) {
            return;
        }
        boolean clean = c.event.isClean();
        if (clean && c.reuse && !c.closeTransport) {
            handBackTransport(c, true); // the outcome was known before: bye() after a peer half-close
            return;
        }
        if (!clean) {
            c.closeTransport = true;
        }
        if (!c.closeTransport) {
            return; // PeerClosePolicy.HALF_CLOSE: the application closes later
        }
        if (!c.localStarted && ctx.channel().isActive() && !sslHandlerRemoved()) {
            // The peer began and we close: make sure our close_notify goes out, whatever the engine did.
            sendCloseNotify(c);
        }
        if (c.localStarted && !c.flushSettled && ctx.channel().isActive()) {
            return; // close once our close_notify is flushed, or its flush timer fires
        }
        closeTransport(c);
    }

    /**
     * Removes the ClosingGuard, the TransportObserver, this handler and, if {@code withSslHandler}, the SslHandler.
     */
    private void handBackTransport(Closure c, boolean withSslHandler) {
        if (!c.localStarted) {
            // PeerClosePolicy.REUSE_TRANSPORT: reply with our close_notify. It is written to the transport right
            // away, so removing the SslHandler below cannot lose it.
            c.localStarted = true;
            sslHandler.closeOutbound();
        }
        c.finished = true;
        cancelTimers(c);
        ChannelPipeline pipeline = ctx.pipeline();
        if (c.guard != null) {
            removeQuietly(c.guard);
        }
        detachObserver();
        removeQuietly(this);
        if (withSslHandler) {
            removeSslHandler();
        }
        if (logger.isDebugEnabled()) {
            logger.debug("{} TLS closed cleanly; transport handed back as plaintext", ctx.channel());
        }
    }

    /**
     * Removes the SslHandler: it hands its undecoded bytes, those after the peer's close_notify, to the next handler
     * as plaintext. Removed inside its own decode(), it does so once decode() returns.
     */
    private void removeSslHandler() {
        removeQuietly(sslHandler);
        ctx.pipeline().flush(); // an engine's own close_notify reply may still be written but not flushed
    }

    private void closeTransport(Closure c) {
        c.finished = true;
        c.transportCloseRequested = true;
        cancelTimers(c);
        ChannelPromise p = newClosePromise(c);
        if (c.disconnect) {
            closeTarget().disconnect(p);
        } else {
            closeTarget().close(p);
        }
    }

    /** A promise for closing the transport that completes the intercepted close() promises with it. */
    private ChannelPromise newClosePromise(Closure c) {
        ChannelPromise p = ctx.newPromise();
        List<ChannelPromise> promises = c.closePromises;
        if (promises != null) {
            p.addListener(f -> {
                for (ChannelPromise cp : promises) {
                    if (f.isSuccess()) {
                        cp.trySuccess();
                    } else {
                        cp.tryFailure(f.cause());
                    }
                }
            });
        }
        return p;
    }

    /** Below the SslHandler, so that its own close logic (and its timers) stay out of the way. */
    private ChannelHandlerContext closeTarget() {
        return sslHandlerRemoved() ? ctx : sslCtx;
    }

    /** True once the SslHandler left the pipeline, already while its handlerRemoved() runs. */
    private boolean sslHandlerRemoved() {
        return ctx.pipeline().context(sslHandler) == null;
    }

    private void shutdownTcpOutput() {
        Channel ch = ctx.channel();
        if (ch instanceof DuplexChannel && ch.isActive()) {
            ((DuplexChannel) ch).shutdownOutput().addListener(f -> {
                if (!f.isSuccess()) {
                    logger.debug("{} TCP shutdownOutput() failed", ch, f.cause());
                }
            });
        }
    }

    private void link(Promise<TlsCloseEvent> promise) {
        Closure c = closure;
        if (c != null && c.event != null) {
            promise.trySuccess(c.event);
        } else {
            outcome().addListener(f -> {
                if (f.isSuccess()) {
                    promise.trySuccess((TlsCloseEvent) f.getNow());
                } else {
                    promise.tryFailure(f.cause());
                }
            });
        }
    }

    private void warnIfOutputShutDownWithoutCloseNotify() {
        if (handshakeSucceeded() && !sslHandler.engine().isOutboundDone()
                && (closure == null || !closure.localStarted)) {
            logger.warn("{} TCP output was shut down without close_notify: use GracefulTlsCloseHandler"
                    + ".shutdownOutput() instead of DuplexChannel.shutdownOutput(), or the peer sees a truncation",
                    ctx.channel());
        }
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
        if (!peerCloseNotify && sslHandler != null && sslHandler.sslCloseFuture().isSuccess()
                && ctx.channel().isActive() && sslHandler.engine().isInboundDone()) {
            peerCloseNotify = true;
        }
        return peerCloseNotify;
    }

    private boolean handshakeSucceeded() {
        return sslHandler != null && sslHandler.handshakeFuture().isSuccess();
    }

    private long now() {
        return Clocks.nanoTime(ctx.executor());
    }

    @SuppressWarnings("unchecked")
    private Promise<TlsCloseEvent> outcome() {
        Promise<TlsCloseEvent> p = outcome;
        if (p == null) {
            ChannelHandlerContext ctx = this.ctx;
            EventExecutor executor = ctx == null ? GlobalEventExecutor.INSTANCE : ctx.executor();
            Promise<TlsCloseEvent> created = new DefaultPromise<>(executor);
            created.setUncancellable();
            if (OUTCOME_UPDATER.compareAndSet(this, null, created)) {
                p = created;
            } else {
                p = outcome;
            }
        }
        return p;
    }

    private void failOutcome(Throwable cause) {
        Promise<TlsCloseEvent> p = outcome;
        if (p != null) {
            p.tryFailure(cause);
        }
    }

    private void detachObserver() {
        InputEndWatcher o = observer;
        if (o != null) {
            try {
                o.detach(ctx.pipeline(), sslHandler);
            } catch (RuntimeException e) {
                logger.debug("{} could not detach {}", ctx.channel(), o, e);
            }
        }
    }

    private void removeQuietly(ChannelHandler handler) {
        if (handler == null) {
            return;
        }
        ChannelPipeline pipeline = ctx.pipeline();
        if (pipeline.context(handler) != null) {
            try {
                pipeline.remove(handler);
            } catch (RuntimeException e) {
                logger.debug("{} could not remove {}", ctx.channel(), handler, e);
            }
        }
    }

    private static void cancelTimers(Closure c) {
        cancel(c.flushTimer);
        c.flushTimer = null;
        cancel(c.waitTimer);
        c.waitTimer = null;
    }

    private static void cancel(ScheduledFuture<?> timer) {
        if (timer != null) {
            timer.cancel(false);
        }
    }

    /** An IOException (SSLException included) that ends the TLS session, unwrapped from a DecoderException. */
    private static Throwable sessionEndingCause(Throwable cause) {
        Throwable t = cause;
        if (t instanceof DecoderException && t.getCause() != null) {
            t = t.getCause();
        }
        // A rejected write (ours or the SslHandler's, fired for a void promise) does not end the session.
        return t instanceof IOException && !(t instanceof SslClosedEngineException) ? t : null;
    }

    static String format(long nanos) {
        if (nanos % 1_000_000_000L == 0) {
            return nanos / 1_000_000_000L + "s";
        }
        if (nanos % 1_000_000L == 0) {
            return nanos / 1_000_000L + "ms";
        }
        return nanos + "ns";
    }

    private static long toNanos(Duration d) {
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return d.isNegative() ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
    }

    private static final class Settings {
        final long flushTimeoutNanos;
        final long readTimeoutNanos;
        final long halfCloseTimeoutNanos;
        final PeerClosePolicy peerClosePolicy;

        Settings(long flushTimeoutNanos, long readTimeoutNanos, long halfCloseTimeoutNanos,
                 PeerClosePolicy peerClosePolicy) {
            this.flushTimeoutNanos = flushTimeoutNanos;
            this.readTimeoutNanos = readTimeoutNanos;
            this.halfCloseTimeoutNanos = halfCloseTimeoutNanos;
            this.peerClosePolicy = peerClosePolicy;
        }
    }

    /**
     * Builds a {@link GracefulTlsCloseHandler}. Each setter checks its argument at once: a {@code null} fails with
     * {@link NullPointerException}, a value out of range with {@link IllegalArgumentException}, each naming the
     * argument. A builder may build several handlers, one per channel.
     */
    public static final class Builder {
        private long flushTimeoutNanos = DEFAULT_SETTINGS.flushTimeoutNanos;
        private long readTimeoutNanos = DEFAULT_SETTINGS.readTimeoutNanos;
        private long halfCloseTimeoutNanos = DEFAULT_SETTINGS.halfCloseTimeoutNanos;
        private PeerClosePolicy peerClosePolicy = DEFAULT_SETTINGS.peerClosePolicy;
        /** The settings of the last handler built, shared with the next ones while nothing changes. */
        private Settings built;

        private Builder() {
        }

        /**
         * Sets how long our {@code close_notify}, queued after the writes already issued, may take to be flushed
         * before the closure ends as {@link TlsCloseStatus#TIMED_OUT}. Must be positive; default
         * {@value #DEFAULT_CLOSE_NOTIFY_FLUSH_TIMEOUT_MILLIS} ms.
         *
         * @param timeout how long the flush of our {@code close_notify} may take, positive
         * @return this builder
         */
        public Builder closeNotifyFlushTimeout(Duration timeout) {
            flushTimeoutNanos = positive(timeout, "closeNotifyFlushTimeout");
            return this;
        }

        /**
         * Sets how long {@link TlsCloseMode#SHUT_RDWR} ({@code close()}, {@code bye(SHUT_RDWR)}) waits for the peer's
         * {@code close_notify} once ours is flushed. Must be positive; default
         * {@value #DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS} ms.
         *
         * @param timeout how long to wait for the peer's {@code close_notify}, positive
         * @return this builder
         */
        public Builder closeNotifyReadTimeout(Duration timeout) {
            readTimeoutNanos = positive(timeout, "closeNotifyReadTimeout");
            return this;
        }

        /**
         * Sets how long {@link TlsCloseMode#SHUT_WR} ({@code bye(SHUT_WR)}, {@code shutdownOutput()}) waits for the
         * peer's {@code close_notify} once ours is flushed. {@link Duration#ZERO}, the default, means no deadline;
         * negative values are rejected.
         *
         * @param timeout how long to wait for the peer's {@code close_notify}, zero for no deadline
         * @return this builder
         */
        public Builder halfCloseTimeout(Duration timeout) {
            Objects.requireNonNull(timeout, "halfCloseTimeout");
            if (timeout.isNegative()) {
                throw new IllegalArgumentException("halfCloseTimeout: " + timeout + " (expected: >= 0)");
            }
            halfCloseTimeoutNanos = toNanos(timeout);
            return this;
        }

        /**
         * Sets what happens when the peer's {@code close_notify} arrives first; default {@link PeerClosePolicy#CLOSE}.
         *
         * @param policy what to do when the peer begins the closure
         * @return this builder
         */
        public Builder peerClosePolicy(PeerClosePolicy policy) {
            peerClosePolicy = Objects.requireNonNull(policy, "peerClosePolicy");
            return this;
        }

        /**
         * Returns a new handler with these settings.
         *
         * @return a new handler
         */
        public GracefulTlsCloseHandler build() {
            Settings s = built;
            if (s == null || s.flushTimeoutNanos != flushTimeoutNanos || s.readTimeoutNanos != readTimeoutNanos
                    || s.halfCloseTimeoutNanos != halfCloseTimeoutNanos || s.peerClosePolicy != peerClosePolicy) {
                // Handlers built with the same settings share them: a server's builder makes one per connection.
                s = built = new Settings(flushTimeoutNanos, readTimeoutNanos, halfCloseTimeoutNanos,
                        peerClosePolicy);
            }
            return new GracefulTlsCloseHandler(s);
        }

        private static long positive(Duration timeout, String name) {
            Objects.requireNonNull(timeout, name);
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException(name + ": " + timeout + " (expected: > 0)");
            }
            return toNanos(timeout);
        }
    }
}
