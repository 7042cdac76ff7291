package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.concurrent.PromiseNotifier;
import io.netty.util.concurrent.ScheduledFuture;
import io.netty.util.internal.logging.InternalLogger;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import javax.net.ssl.SSLException;

/**
 * The one TLS closure of a channel, from its first cause to its end. One object owns the phase, the timer, the
 * close promise and the outcome; while our {@code close_notify} is out it also sits right after the
 * {@link GracefulTlsCloseHandler} as the guard that rejects writes and, under {@link TlsCloseMode#SHUT_RDWR},
 * releases inbound application data and counts it. Touched only on the event loop.
 *
 * <h3>State</h3>
 * Three things, each with named values: the {@code phase} (how far our side got), the {@code end} (what follows a
 * known outcome; it is only ever raised, and an unclean outcome raises it to {@code CLOSE}), and the outcome
 * itself ({@code event}, decided once, by {@link #settle}).
 *
 * <table class="striped">
 *   <caption>Phases</caption>
 *   <tr><th>phase</th><th>meaning</th><th>timer</th></tr>
 *   <tr><td>IDLE</td><td>our {@code close_notify} not sent: the peer began, or the transport ended</td>
 *       <td>none</td></tr>
 *   <tr><td>FLUSHING</td><td>our {@code close_notify} queued after the writes already issued</td>
 *       <td>{@code closeNotifyFlushTimeout}</td></tr>
 *   <tr><td>FLUSHED</td><td>its flush settled: it is out (or it failed or timed out, and the outcome says so)</td>
 *       <td>while the outcome is unknown: {@code closeNotifyReadTimeout} if discarding (SHUT_RDWR), else
 *       {@code halfCloseTimeout} (none if zero)</td></tr>
 *   <tr><td>CLOSED</td><td>terminal: the transport's close (or disconnect) was requested below the
 *       {@code SslHandler}</td><td>none</td></tr>
 *   <tr><td>HANDED_BACK</td><td>terminal: the {@code SslHandler} and the handler left, the transport is plaintext
 *       </td><td>none</td></tr>
 *   <tr><td>RELEASED</td><td>terminal: the application removed the {@code SslHandler} outside any closure; the
 *       handler left, the transport stays as it is</td><td>none</td></tr>
 * </table>
 *
 * <table class="striped">
 *   <caption>Transitions (any input in a terminal phase changes nothing, but {@code abort} of a handed-back
 *   transport)</caption>
 *   <tr><th>input</th><th>effect</th></tr>
 *   <tr><td>{@code close()}, {@code disconnect()}</td><td>IDLE: send, FLUSHING; end at least CLOSE (DISCONNECT if the
 *       first intercepted call was {@code disconnect()}); discard inbound and wait with the read timeout</td></tr>
 *   <tr><td>{@code bye(SHUT_RDWR)}</td><td>IDLE: send, FLUSHING; end at least HAND_BACK; discard and wait with the
 *       read timeout</td></tr>
 *   <tr><td>{@code bye(SHUT_WR)}</td><td>IDLE: send, FLUSHING; end at least HAND_BACK</td></tr>
 *   <tr><td>{@code shutdownOutput()}</td><td>IDLE: send, FLUSHING; end at least CLOSE and FIN once FLUSHED
 *       ({@code bye(SHUT_WR)} on a channel that cannot half-close)</td></tr>
 *   <tr><td>flush done</td><td>FLUSHING to FLUSHED: FIN if asked, wait timer; if it failed: FAILED (TRUNCATED if the
 *       channel is gone)</td></tr>
 *   <tr><td>flush timer</td><td>FLUSHING to FLUSHED: TIMED_OUT, end CLOSE</td></tr>
 *   <tr><td>wait timer</td><td>TIMED_OUT</td></tr>
 *   <tr><td>peer's {@code close_notify}</td><td>CLOSE_NOTIFY_RECEIVED</td></tr>
 *   <tr><td>FIN, RST, inactive before it</td><td>TRUNCATED</td></tr>
 *   <tr><td>{@code SSLException}, handler removed mid-close</td><td>FAILED</td></tr>
 *   <tr><td>{@code abort}</td><td>FAILED; CLOSED with a TCP reset, without {@code close_notify}</td></tr>
 * </table>
 *
 * <p>After each input, {@link #advance} carries out what the state calls for, in one place: with the outcome
 * known, a clean outcome and end HAND_BACK hands the transport back; end CLOSE or DISCONNECT makes sure our
 * {@code close_notify} goes out (IDLE: the peer began), waits while FLUSHING, then closes; LEAVE_OPEN does
 * nothing ({@link PeerClosePolicy#HALF_CLOSE}: the application closes later).
 */
final class Closure extends ClosingGuard implements ChannelFutureListener, Runnable {

    /** The handler's: a closure is what the handler does. */
    private static final InternalLogger logger = GracefulTlsCloseHandler.logger;

    // Phases, in order; from CLOSED on, terminal.
    static final byte IDLE = 0;
    static final byte FLUSHING = 1;
    static final byte FLUSHED = 2;
    static final byte CLOSED = 3;
    static final byte HANDED_BACK = 4;
    static final byte RELEASED = 5;

    // Ends, in order: raise() only moves up.
    static final byte LEAVE_OPEN = 0;
    static final byte HAND_BACK = 1;
    static final byte CLOSE = 2;
    static final byte DISCONNECT = 3;

    private final ClosureDriver handler;
    /** Who began: the peer, or this side (a byte, not a reference: a closure is allocated per connection). */
    private final boolean peerBegan;
    private final TlsCloseMode mode;
    private final long startNanos;
    private byte phase = IDLE;
    private byte end;
    /** SHUT_RDWR: inbound application data is released unread and counted until the outcome. */
    private boolean discard;
    /** shutdownOutput(): the TCP output is shut down once our close_notify is flushed. */
    private boolean finAfterFlush;
    private long discarded;
    /** The wait timer's timeout, for its message. */
    private long waitTimeoutNanos;
    private ScheduledFuture<?> timer;
    private ChannelFuture closeNotify;
    /** The first intercepted close() or disconnect() promise; the later ones follow it. */
    private ChannelPromise closePromise;
    private TlsCloseEvent event;
    /** Null, the {@link Outcome}, or the event once concluded with nobody asking: see {@link Outcome#of}. */
    volatile Object outcome;

    Closure(ClosureDriver handler, TlsCloseInitiator initiator, TlsCloseMode mode) {
        this.handler = handler;
        this.peerBegan = initiator == TlsCloseInitiator.PEER;
        this.mode = mode;
        this.startNanos = now();
    }

    byte phase() {
        return phase;
    }

    TlsCloseEvent event() {
        return event;
    }

    boolean isTerminal() {
        return phase >= CLOSED;
    }

    /** Whether nothing was sent yet and nothing ended: the peer began, or the transport ended, just now. */
    boolean isIdle() {
        return phase == IDLE;
    }

    /** Whether our close_notify is on its way or out, and the closure not over. */
    boolean isSending() {
        return phase == FLUSHING || phase == FLUSHED;
    }

    void raise(byte end) {
        if (end > this.end) {
            this.end = end;
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Local operations; the handler has checked that they are valid
    // ------------------------------------------------------------------------------------------------------------

    /** Sends our close_notify if nothing was sent yet and the closure is not over. */
    void start() {
        if (phase == IDLE) {
            sendCloseNotify();
        }
    }

    void close(ChannelPromise promise, boolean disconnect) {
        if (closePromise == null) {
            closePromise = promise.unvoid();
            raise(disconnect ? DISCONNECT : CLOSE);
        } else {
            closePromise.addListener(new PromiseNotifier<Void, ChannelFuture>(promise.unvoid()));
            raise(CLOSE);
        }
        waitDiscarding();
        advance();
    }

    void bye(TlsCloseMode how) {
        raise(HAND_BACK);
        if (how == TlsCloseMode.SHUT_RDWR) {
            waitDiscarding();
        }
        advance();
    }

    void shutdownOutput() {
        Channel ch = handler.ctx.channel();
        if (ch instanceof DuplexChannel) {
            if (!Boolean.TRUE.equals(ch.config().getOption(ChannelOption.ALLOW_HALF_CLOSURE))) {
                logger.warn("{} shutdownOutput() on a channel whose ALLOW_HALF_CLOSURE is off: the peer's FIN will "
                        + "close it instead of ending its input only; set ChannelOption.ALLOW_HALF_CLOSURE to true "
                        + "for a TLS half-close", ch);
            }
            raise(CLOSE);
            finAfterFlush = true;
            if (phase == FLUSHED) {
                SslPipeline.shutdownTcpOutput(handler.ctx.channel());
            }
        } else {
            logger.debug("{} is not a DuplexChannel: shutdownOutput() behaves as bye(SHUT_WR)", ch);
            raise(HAND_BACK);
        }
        advance();
    }

    /**
     * Ends the connection without close_notify, with a TCP reset where the transport allows it if {@code reset}.
     * The outcome, if not known yet, is FAILED.
     */
    void abort(Throwable cause, boolean reset) {
        settle(TlsCloseStatus.FAILED, cause, false);
        if (phase == CLOSED || isTerminal() && !handler.ctx.channel().isActive()) {
            return;
        }
        phase = CLOSED;
        cancelTimer();
        if (reset) {
            SslPipeline.resetAndClose(handler.ctx, handler.sslHandler, closePromise());
        } else {
            SslPipeline.close(handler.ctx, handler.sslHandler, closePromise(), false);
        }
    }

    /** SHUT_RDWR: release inbound application data, and wait with the read timeout once our close_notify is out. */
    private void waitDiscarding() {
        if (event == null) {
            discard = true;
            if (phase == FLUSHED) {
                armWaitTimer();
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // What the peer and the transport do
    // ------------------------------------------------------------------------------------------------------------

    /**
     * The peer's close_notify arrived. {@code inSslDecode}: seen in the SslHandler's close event, inside its
     * decode(), where removing the SslHandler delivers its remaining bytes only once decode() returns.
     */
    void peerCloseNotify(boolean inSslDecode) {
        settle(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, null, inSslDecode);
        advance();
    }

    /** The transport's input ended (FIN, RST, inactive) before the peer's close_notify. */
    void inputEnded(TlsTruncationException truncation) {
        settle(TlsCloseStatus.TRUNCATED, truncation, false);
        raise(CLOSE);
        advance();
    }

    /** A local failure: an SSLException, or the handler removed mid-close. */
    void failed(Throwable cause) {
        settle(TlsCloseStatus.FAILED, cause, false);
        raise(CLOSE);
        advance();
    }

    /** The application removed the SslHandler outside any closure: it wants the transport as it is. */
    void release(Throwable cause) {
        settle(TlsCloseStatus.FAILED, cause, false);
        phase = RELEASED;
        cancelTimer();
        leavePipeline(false);
    }

    /** The channel went inactive: no timer is needed any more, and a closure waiting for something ends now. */
    void channelInactive() {
        cancelTimer();
        advance();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our close_notify, and the timers
    // ------------------------------------------------------------------------------------------------------------

    private void sendCloseNotify() {
        phase = FLUSHING;
        ChannelHandlerContext ctx = handler.ctx;
        if (!ctx.isRemoved()) {
            ctx.pipeline().addAfter(ctx.name(), null, this);
        }
        ChannelFuture f;
        try {
            // SslHandler.closeOutbound() closes the engine before it wraps the writes already queued, which would
            // then fail: wrap them first, so that they go out in full ahead of our close_notify. (A flush with
            // nothing queued would still wrap an empty buffer: not done.)
            if (SslHandlerAccess.hasPendingWrites(handler.sslHandler)) {
                ctx.flush();
            }
            f = handler.sslHandler.closeOutbound();
        } catch (RuntimeException e) {
            f = ctx.newFailedFuture(e);
        }
        closeNotify = f;
        if (!f.isDone()) {
            timer = ctx.executor().schedule(this, handler.settings.flushTimeoutNanos, TimeUnit.NANOSECONDS);
        }
        f.addListener(this);
    }

    /** Our close_notify's flush settled. */
    @Override
    public void operationComplete(ChannelFuture f) {
        if (phase != FLUSHING) {
            return; // its timer came first, or the closure ended
        }
        phase = FLUSHED;
        cancelTimer();
        if (f.isSuccess()) {
            if (finAfterFlush) {
                SslPipeline.shutdownTcpOutput(handler.ctx.channel());
            }
            if (event == null) {
                armWaitTimer();
            }
        } else if (handler.ctx.channel().isActive()) {
            settle(TlsCloseStatus.FAILED, f.cause(), false);
        } else {
            settle(TlsCloseStatus.TRUNCATED, InputEndMeter.truncation("the transport failed while sending close_notify",
                    -1, f.cause()), false);
        }
        advance();
    }

    /** The flush timer (FLUSHING) or the wait timer (FLUSHED). */
    @Override
    public void run() {
        timer = null;
        if (phase == FLUSHING) {
            if (closeNotify.isDone()) {
                return; // flushed just now: its listener settles it
            }
            phase = FLUSHED;
            settle(TlsCloseStatus.TIMED_OUT, new TimeoutException("close_notify could not be flushed within "
                    + Durations.format(handler.settings.flushTimeoutNanos)), false);
            raise(CLOSE);
        } else {
            settle(TlsCloseStatus.TIMED_OUT, new TimeoutException("the peer's close_notify did not arrive within "
                    + Durations.format(waitTimeoutNanos)), false);
        }
        advance();
    }

    /** Starts, or brings forward, the deadline for the peer's close_notify. Called once our close_notify is out. */
    private void armWaitTimer() {
        Settings s = handler.settings;
        long timeout = discard ? s.readTimeoutNanos : s.halfCloseTimeoutNanos;
        if (timeout <= 0) {
            return;
        }
        ScheduledFuture<?> t = timer;
        if (t != null && t.getDelay(TimeUnit.NANOSECONDS) <= timeout) {
            return;
        }
        cancelTimer();
        ChannelHandlerContext ctx = handler.ctx;
        waitTimeoutNanos = timeout;
        timer = ctx.executor().schedule(this, timeout, TimeUnit.NANOSECONDS);
        if (!ctx.channel().config().isAutoRead()) {
            ctx.read();
        }
    }

    /** The guard, the meter, the handler and, if asked, the SslHandler leave the pipeline. */
    private void leavePipeline(boolean withSslHandler) {
        SslPipeline.removeQuietly(handler.ctx, this);
        handler.leavePipeline();
        if (withSslHandler) {
            SslPipeline.removeSslHandler(handler.ctx, handler.sslHandler);
        }
    }

    /** The executor's clock, which EmbeddedChannel.freezeTime() and advanceTimeBy() drive. */
    private long now() {
        return Clocks.nanoTime(handler.ctx.executor());
    }

    private ChannelPromise closePromise() {
        return closePromise != null ? closePromise : handler.ctx.newPromise();
    }

    private void cancelTimer() {
        ScheduledFuture<?> t = timer;
        if (t != null) {
            timer = null;
            t.cancel(false);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // The outcome, and what follows it
    // ------------------------------------------------------------------------------------------------------------

    /**
     * Decides the outcome: the first call wins, every later one changes nothing. Fires the event, then completes
     * the outcome. A clean outcome with end HAND_BACK makes the transport plaintext before anyone hears of it, so
     * that a listener or a handler reacting to the event can write plaintext at once (FTPS CCC, LDAP TLS removal),
     * and the bytes that followed the peer's close_notify reach the next handler after the event.
     */
    private void settle(TlsCloseStatus status, Throwable cause, boolean inSslDecode) {
        if (event != null) {
            return;
        }
        long elapsedNanos = peerBegan && mode == null ? 0 : Math.max(0, now() - startNanos);
        TlsCloseEvent e = event = new TlsCloseEvent(status, peerBegan ? TlsCloseInitiator.PEER
                : TlsCloseInitiator.LOCAL, mode, elapsedNanos, cause, discarded, handler.messageState);
        if (phase != FLUSHING) {
            cancelTimer(); // the wait is over; a flush timer runs on until the flush settles
        }
        ChannelHandlerContext ctx = handler.ctx;
        if (logger.isDebugEnabled()) {
            logger.debug("{} {}", ctx.channel(), e);
        }
        if (e.isClean() && end == HAND_BACK) {
            // Inside the SslHandler's decode(), removing it delivers its bytes once decode() returns: remove it now.
            // Outside, removing it delivers them at once: after the event.
            handBack(inSslDecode);
            ctx.fireUserEventTriggered(e);
            if (!inSslDecode) {
                SslPipeline.removeSslHandler(handler.ctx, handler.sslHandler);
            }
        } else {
            ctx.fireUserEventTriggered(e);
        }
        Outcome.publish(this, e);
    }

    /** Carries out what a known outcome calls for. Idempotent; does nothing until the outcome is known. */
    private void advance() {
        if (event == null || isTerminal()) {
            return;
        }
        if (!event.isClean()) {
            raise(CLOSE);
        }
        if (end == HAND_BACK) {
            handBack(true); // the outcome was known before: bye() after a peer's half-close
        } else if (end >= CLOSE) {
            Channel ch = handler.ctx.channel();
            if (phase == IDLE && ch.isActive() && !SslPipeline.isRemoved(handler.ctx, handler.sslHandler)) {
                sendCloseNotify(); // the peer began and we close: make sure ours goes out, whatever the engine did
            }
            if (phase == FLUSHING && ch.isActive()) {
                return; // close once flushed, or when the flush timer fires
            }
            phase = CLOSED;
            cancelTimer();
            SslPipeline.close(handler.ctx, handler.sslHandler, closePromise(), end == DISCONNECT);
        }
        // LEAVE_OPEN: PeerClosePolicy.HALF_CLOSE, the application closes later.
    }

    /** Leaves the transport as plaintext: the guard, the meter, the handler and, if asked, the SslHandler leave. */
    private void handBack(boolean withSslHandler) {
        if (phase == IDLE) {
            // PeerClosePolicy.REUSE_TRANSPORT: reply with our close_notify. It is written to the transport at once,
            // so removing the SslHandler after it cannot lose it.
            handler.sslHandler.closeOutbound();
        }
        phase = HANDED_BACK;
        cancelTimer();
        leavePipeline(withSslHandler);
        if (logger.isDebugEnabled()) {
            logger.debug("{} TLS closed cleanly; transport handed back as plaintext", handler.ctx.channel());
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // As the guard, in the pipeline while our close_notify is out
    // ------------------------------------------------------------------------------------------------------------

    @Override
    boolean isDiscarding() {
        // Strict: once failed on data, what follows in the same read is released too, never delivered.
        return discard && (!isTerminal() || handler.settings.failOnDataAfterCloseNotify);
    }

    @Override
    void discarded(long bytes) {
        discarded += bytes;
        if (bytes > 0 && handler.settings.failOnDataAfterCloseNotify) {
            failed(new SSLException(bytes + " bytes of application data while waiting for the peer's close_notify"));
        }
    }

    @Override
    void readComplete() {
        if (!isTerminal()) {
            handler.recheckPeerCloseNotify(); // after a false close signal (OpenSSL), the true one comes with a read
        }
    }

    @Override
    public String toString() {
        return "Closure(" + ClosureNames.phase(phase) + ", end " + ClosureNames.end(end) + ", "
                + (event == null ? "pending" : event) + ')';
    }
}
