package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.ChannelOutputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
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
import io.netty.util.concurrent.PromiseNotifier;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import javax.net.ssl.SSLException;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
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
 * may be called from any thread; the work runs on the channel's event loop, as does everything else, and the
 * listeners of the returned futures run there too.
 *
 * <h2>Structure</h2>
 * This class is the pipeline's face: the public operations, the hops onto the event loop, and the pipeline events,
 * each turned into an input of the channel's one {@code Closure}, the state machine that decides the outcome and
 * carries out what follows it. An {@code InputEndMeter} measures where the input ended, for truncations.
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

    static final InternalLogger logger = InternalLoggerFactory.getInstance(GracefulTlsCloseHandler.class);

    @SuppressWarnings("rawtypes")
    private static final AtomicReferenceFieldUpdater<GracefulTlsCloseHandler, Promise> OUTCOME_UPDATER =
            AtomicReferenceFieldUpdater.newUpdater(GracefulTlsCloseHandler.class, Promise.class, "outcome");

    /** The peer's close_notify has arrived, as verified by {@link #checkPeerCloseNotify()}. */
    private static final byte PEER_CLOSE_NOTIFY = 1;
    /** Set by {@link TlsCloseRelay}: the peer's close_notify ends its direction only (PeerClosePolicy.HALF_CLOSE). */
    private static final byte RELAYED = 2;

    final Settings settings;
    ChannelHandlerContext ctx;
    SslHandler sslHandler;
    /** What measures a record cut by the end of the input, or null where the SslHandler's buffer tells. */
    private InputEndMeter meter;
    /** Created when the closure begins; idle channels have none. */
    private Closure closure;
    private byte flags;
    /** Completed with the one TlsCloseEvent of this channel; created on demand. */
    private volatile Promise<TlsCloseEvent> outcome;

    /**
     * Creates a handler with the defaults: 3 s to flush our {@code close_notify}, 3 s to wait for the peer's under
     * {@link TlsCloseMode#SHUT_RDWR}, no deadline under {@link TlsCloseMode#SHUT_WR}, {@link PeerClosePolicy#CLOSE}.
     */
    public GracefulTlsCloseHandler() {
        this(Settings.DEFAULT);
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
    // Public operations: from any thread, carried out on the event loop
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
        return submit(how == TlsCloseMode.SHUT_RDWR ? "bye(SHUT_RDWR)" : "bye(SHUT_WR)", how, false);
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
        return submit("shutdownOutput()", TlsCloseMode.SHUT_WR, true);
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
     * pipeline before any closure. Its listeners run on the channel's event loop, also when this method is called
     * before the handler is added to a pipeline.
     *
     * @return the future of this channel's TLS closure
     */
    public Future<TlsCloseEvent> closeFuture() {
        Promise<TlsCloseEvent> p = outcome();
        ChannelHandlerContext ctx = this.ctx;
        if (!p.isDone() && ctx != null) {
            // Created on demand: complete it if the outcome is known, or fail it if no outcome can come. The state
            // is read on the event loop, where a closure cannot be seen half done.
            onEventLoop(ctx.executor(), () -> syncOutcome(p), () -> syncOutcome(p));
        }
        return p;
    }

    private Future<TlsCloseEvent> submit(String call, TlsCloseMode mode, boolean shutdownOutput) {
        ChannelHandlerContext ctx = this.ctx;
        if (ctx == null) {
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(new IllegalStateException(call + " called on a "
                    + GracefulTlsCloseHandler.class.getSimpleName() + " that is not in a pipeline"));
        }
        EventExecutor executor = ctx.executor();
        Promise<TlsCloseEvent> promise = executor.newPromise();
        onEventLoop(executor, () -> run(call, mode, shutdownOutput, promise), () -> promise.tryFailure(
                new RejectedExecutionException(call + ": the event loop of " + ctx.channel() + " is shut down")));
        return promise;
    }

    private static void onEventLoop(EventExecutor executor, Runnable task, Runnable rejected) {
        if (executor.inEventLoop()) {
            task.run();
        } else {
            try {
                executor.execute(task);
            } catch (RejectedExecutionException e) {
                rejected.run();
            }
        }
    }

    private void run(String call, TlsCloseMode mode, boolean shutdownOutput, Promise<TlsCloseEvent> promise) {
        Closure c = closure;
        if (c != null && c.event() != null && c.isTerminal()) {
            promise.trySuccess(c.event());
            return;
        }
        if (!handshakeSucceeded()) {
            Throwable cause = sslHandler == null ? null : sslHandler.handshakeFuture().cause();
            promise.tryFailure(new IllegalStateException(call + " called before the TLS handshake succeeded"
                    + (cause == null ? "" : ": it failed"), cause));
            return;
        }
        if (ctx.isRemoved()) {
            promise.tryFailure(new IllegalStateException(call + " called on a "
                    + GracefulTlsCloseHandler.class.getSimpleName() + " that was removed from its pipeline"));
            return;
        }
        if (!ctx.channel().isActive() && (c == null || c.event() == null)) {
            onTransportEnded(null, "the channel became inactive", -1);
        } else if (shutdownOutput) {
            beginLocal(mode).shutdownOutput();
        } else {
            beginLocal(mode).bye(mode);
        }
        TlsCloseEvent event = closure.event();
        if (event != null) {
            promise.trySuccess(event);
        } else {
            outcome().addListener(new PromiseNotifier<>(promise));
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
        this.sslHandler = (SslHandler) sslCtx.handler();
        meter = InputEndMeter.attach(ctx, sslCtx);
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
            detachMeter();
            removeQuietly(c);
        }
        if (c != null && c.isSending() && c.event() == null) {
            // Removed by the application mid-close: report it, and close since the TLS state is unknown.
            c.failed(new IllegalStateException(GracefulTlsCloseHandler.class.getSimpleName()
                    + " removed from the pipeline mid-close"));
        } else if (c == null || c.event() == null) {
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
        if (c != null && c.isClosing()) {
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
        c = beginLocal(TlsCloseMode.SHUT_RDWR);
        if (c.isTerminal()) {
            // Settled at once: the peer's close_notify had arrived, and the transport was closed or handed back.
            closeTransport(promise, disconnect);
        } else {
            c.close(promise, disconnect);
        }
    }

    /** Returns the closure, begun now by a local operation if none is under way, with our close_notify sent. */
    private Closure beginLocal(TlsCloseMode mode) {
        if (closure == null && checkPeerCloseNotify()) {
            onPeerCloseNotify(false); // it arrived, but its event is still on its way to us: the peer began
        }
        Closure c = closure;
        if (c == null) {
            c = closure = new Closure(this, TlsCloseInitiator.LOCAL, mode);
        }
        c.start();
        return c;
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
                    // Unless it is a false signal: OpenSSL's engine reports CLOSED for any input once our own
                    // close_notify is out. The closure's guard checks again after each read.
                    if (checkPeerCloseNotify()) {
                        onPeerCloseNotify(true);
                    }
                } else if (e.cause() instanceof ClosedChannelException) {
                    // Fired by the SslHandler before it releases its buffer: an incomplete record is still there.
                    onTransportEnded(e.cause(), "the channel became inactive", partialRecordBytes(true));
                } else {
                    onFailure(e.cause());
                }
            }
        } else if (evt instanceof ChannelInputShutdownEvent) {
            if (handshakeSucceeded()) {
                // The SslHandler released its buffer by now: only a meter can tell.
                onTransportEnded(null, "the peer shut down its output (FIN)", partialRecordBytes(false));
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
        Throwable io = handshakeSucceeded() ? sessionEndingCause(cause) : null;
        if (io == null) {
            ctx.fireExceptionCaught(cause);
            return;
        }
        if (io instanceof SSLException) {
            onFailure(io);
        } else {
            onTransportEnded(io, "the transport failed", partialRecordBytes(true));
        }
        if (logger.isDebugEnabled()) {
            logger.debug("{} exception reported in the TLS close outcome, not propagated", ctx.channel(), cause);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (handshakeSucceeded()) {
            onTransportEnded(null, "the channel became inactive", partialRecordBytes(false));
        } else {
            failOutcome(new IllegalStateException("the channel closed before the TLS handshake succeeded"));
        }
        Closure c = closure;
        if (c != null) {
            c.channelInactive();
        }
        ctx.fireChannelInactive();
    }

    private void onPeerCloseNotify(boolean inSslDecode) {
        Closure c = closure;
        if (c == null) {
            c = closure = new Closure(this, TlsCloseInitiator.PEER, null);
            PeerClosePolicy policy = (flags & RELAYED) != 0 ? PeerClosePolicy.HALF_CLOSE : settings.peerClosePolicy;
            c.raise(policy == PeerClosePolicy.CLOSE ? Closure.CLOSE
                    : policy == PeerClosePolicy.REUSE_TRANSPORT ? Closure.HAND_BACK : Closure.LEAVE_OPEN);
        }
        c.peerCloseNotify(inSslDecode);
    }

    /** The transport's input ended: clean if the peer's close_notify came first, else a truncation. */
    private void onTransportEnded(Throwable cause, String what, int partialRecordBytes) {
        if (checkPeerCloseNotify()) {
            // A clean end, whatever the transport does next. It may be seen only now: after a false close signal
            // (OpenSSL) the next confirmation is the read-complete, which some transports (io_uring) deliver after
            // the input shutdown.
            onPeerCloseNotify(false);
        } else {
            unexpectedEnd().inputEnded(truncation(what + " before the peer's close_notify", partialRecordBytes,
                    cause));
        }
    }

    private void onFailure(Throwable cause) {
        Closure c = unexpectedEnd();
        if (sslHandlerRemoved() && c.isIdle() && ctx.channel().isActive()) {
            c.release(cause);
        } else {
            c.failed(cause);
        }
    }

    /** The closure an unexpected end concludes: begun by whoever sent close_notify first, if it is new. */
    private Closure unexpectedEnd() {
        Closure c = closure;
        if (c == null) {
            boolean local = sslHandler.engine().isOutboundDone() || sslHandlerRemoved();
            c = closure = new Closure(this, local ? TlsCloseInitiator.LOCAL : TlsCloseInitiator.PEER, null);
        }
        return c;
    }

    private void warnIfOutputShutDownWithoutCloseNotify() {
        if (handshakeSucceeded() && !sslHandler.engine().isOutboundDone()
                && (closure == null || closure.isIdle())) {
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
    void abort(Throwable cause) {
        if (!handshakeSucceeded()) {
            resetAndClose(ctx.newPromise());
        } else {
            Closure c = closure;
            if (c == null) {
                c = closure = new Closure(this, TlsCloseInitiator.LOCAL, null);
            }
            c.abort(cause);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // For the Closure
    // ------------------------------------------------------------------------------------------------------------

    /** After each read while a closure is under way: the peer's close_notify may have come after a false signal. */
    void recheckPeerCloseNotify() {
        if ((flags & PEER_CLOSE_NOTIFY) == 0 && checkPeerCloseNotify()) {
            onPeerCloseNotify(false);
        }
    }

    /** Closes (or disconnects) the transport below the SslHandler, whose own close logic and timers stay out. */
    void closeTransport(ChannelPromise promise, boolean disconnect) {
        if (disconnect) {
            closeTarget().disconnect(promise);
        } else {
            closeTarget().close(promise);
        }
    }

    /** Closes the transport with a TCP reset where it allows one, below the SslHandler: no alert, no close_notify. */
    void resetAndClose(ChannelPromise promise) {
        Channel ch = ctx.channel();
        if (ch.isActive()) {
            try {
                ch.config().setOption(ChannelOption.SO_LINGER, 0);
            } catch (RuntimeException e) {
                logger.debug("{} cannot set SO_LINGER 0: closing without a reset", ch, e);
            }
        }
        closeTarget().close(promise);
    }

    /** The guard, the meter and this handler leave the pipeline, and with {@code withSslHandler} the SslHandler. */
    void leavePipeline(Closure guard, boolean withSslHandler) {
        removeQuietly(guard);
        detachMeter();
        removeQuietly(this);
        if (withSslHandler) {
            removeSslHandler();
        }
    }

    /**
     * Removes the SslHandler: it hands its undecoded bytes, those after the peer's close_notify, to the next handler
     * as plaintext. Removed inside its own decode(), it does so once decode() returns.
     */
    void removeSslHandler() {
        removeQuietly(sslHandler);
        ctx.pipeline().flush(); // an engine's own close_notify reply may still be written but not flushed
    }

    /** True once the SslHandler left the pipeline, already while its handlerRemoved() runs. */
    boolean sslHandlerRemoved() {
        return ctx.pipeline().context(sslHandler) == null;
    }

    /** Returns the cause of a truncation, saying whether it cut a TLS record. */
    TlsTruncationException truncation(String what, int partialRecordBytes, Throwable cause) {
        return InputEndMeter.truncation(what, partialRecordBytes, cause);
    }

    /** The executor's clock, which EmbeddedChannel.freezeTime() and advanceTimeBy() drive. */
    long now() {
        return Clocks.nanoTime(ctx.executor());
    }

    void completeOutcome(TlsCloseEvent event) {
        Promise<TlsCloseEvent> p = outcome;
        if (p != null) {
            p.trySuccess(event);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    /** Below the SslHandler, or where it was. */
    private ChannelHandlerContext closeTarget() {
        ChannelHandlerContext sslCtx = ctx.pipeline().context(sslHandler);
        return sslCtx != null ? sslCtx : ctx;
    }

    /**
     * Returns the bytes of a TLS record cut by the end of the input, from the meter, or, without one, from the
     * SslHandler's buffer if it still holds them ({@code bufferHeld}), else -1.
     */
    private int partialRecordBytes(boolean bufferHeld) {
        InputEndMeter m = meter;
        if (m != null) {
            return m.partialRecordBytes(sslHandler);
        }
        return bufferHeld ? SslHandlerAccess.undecodedBytes(sslHandler) : -1;
    }

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

    private boolean handshakeSucceeded() {
        return sslHandler != null && sslHandler.handshakeFuture().isSuccess();
    }

    @SuppressWarnings("unchecked")
    private Promise<TlsCloseEvent> outcome() {
        Promise<TlsCloseEvent> p = outcome;
        if (p == null) {
            Promise<TlsCloseEvent> created = new Outcome(this);
            p = OUTCOME_UPDATER.compareAndSet(this, null, created) ? created : outcome;
        }
        return p;
    }

    /** On the event loop: completes a promise created on demand, or fails it if no outcome can come. */
    private void syncOutcome(Promise<TlsCloseEvent> p) {
        Closure c = closure;
        if (p.isDone()) {
            return;
        }
        if (c != null && c.event() != null) {
            p.trySuccess(c.event());
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

    private void failOutcome(Throwable cause) {
        Promise<TlsCloseEvent> p = outcome;
        if (p != null) {
            p.tryFailure(cause);
        }
    }

    private void detachMeter() {
        InputEndMeter m = meter;
        if (m != null) {
            try {
                m.detach(ctx.pipeline(), sslHandler);
            } catch (RuntimeException e) {
                logger.debug("{} could not detach {}", ctx.channel(), m, e);
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

    /**
     * The outcome promise. Its listeners run on the channel's event loop, also when it was created before the
     * handler knew its channel (closeFuture() called before the handler was added).
     */
    private static final class Outcome extends DefaultPromise<TlsCloseEvent> {
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
    }

    /**
     * Builds a {@link GracefulTlsCloseHandler}. Each setter checks its argument at once: a {@code null} fails with
     * {@link NullPointerException}, a value out of range with {@link IllegalArgumentException}, each naming the
     * argument. A builder may build several handlers, one per channel.
     */
    public static final class Builder {
        private long flushTimeoutNanos = Settings.DEFAULT.flushTimeoutNanos;
        private long readTimeoutNanos = Settings.DEFAULT.readTimeoutNanos;
        private long halfCloseTimeoutNanos = Settings.DEFAULT.halfCloseTimeoutNanos;
        private PeerClosePolicy peerClosePolicy = Settings.DEFAULT.peerClosePolicy;
        /** The settings of the last handler built, shared with the next ones while nothing changes. */
        private Settings built = Settings.DEFAULT;

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
            flushTimeoutNanos = Settings.positive(timeout, "closeNotifyFlushTimeout");
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
            readTimeoutNanos = Settings.positive(timeout, "closeNotifyReadTimeout");
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
            halfCloseTimeoutNanos = Settings.notNegative(timeout, "halfCloseTimeout");
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
            if (!built.sameAs(flushTimeoutNanos, readTimeoutNanos, halfCloseTimeoutNanos, peerClosePolicy)) {
                // Handlers built with the same settings share them: a server's builder makes one per connection.
                built = new Settings(flushTimeoutNanos, readTimeoutNanos, halfCloseTimeoutNanos, peerClosePolicy);
            }
            return new GracefulTlsCloseHandler(built);
        }
    }
}
