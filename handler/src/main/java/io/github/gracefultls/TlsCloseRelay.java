package io.github.gracefultls;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import java.io.IOException;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * Relays bytes and closure between the two channels of a proxied connection, without ever turning a truncated stream
 * into a clean one.
 *
 * <p>Each side is either TLS, with an {@link SslHandler} and a {@link GracefulTlsCloseHandler} in its pipeline, or
 * plain TCP. The relay:
 * <ul>
 *   <li>copies what one side reads to the other, reading again only once the write is done (auto-read is switched
 *       off), so that a slow side slows the other down;</li>
 *   <li>turns a clean end of one side's input (the peer's {@code close_notify}; on a plain side, a FIN) into
 *       {@link GracefulTlsCloseHandler#shutdownOutput() shutdownOutput()} on the other side ({@code close_notify} then
 *       FIN; on a plain side, FIN), after every byte already read has been written;</li>
 *   <li>lets the other direction flow until it ends too, then closes both channels;</li>
 *   <li>turns a truncation on one side ({@link TlsCloseStatus#TRUNCATED}, a reset, a close without FIN) into an abort
 *       of the other: a TCP reset ({@code SO_LINGER} 0) and no {@code close_notify}, so that the far peer sees a
 *       truncation too;</li>
 *   <li>aborts both sides when one times out or fails.</li>
 * </ul>
 * Both channels need {@link ChannelOption#ALLOW_HALF_CLOSURE} on; {@link #link(Channel, Channel)} fails otherwise.
 * On a TLS side the relay switches the {@link GracefulTlsCloseHandler} to {@link PeerClosePolicy#HALF_CLOSE}: the
 * peer's {@code close_notify} ends one direction only. Whether the other direction can still be written after it
 * depends on the TLS engine: the JDK provider under TLS 1.3 can, the others reply {@code close_notify} at once and
 * cannot (see the engine table in the project's docs/engines.md).
 *
 * <h2>Example: the backend connection of a TLS-terminating proxy</h2>
 * <pre>
 * public void channelActive(ChannelHandlerContext ctx) {          // frontend: ssl, tls-close, this handler
 *     Channel frontend = ctx.channel();
 *     frontend.config().setAutoRead(false);
 *     new Bootstrap().group(frontend.eventLoop())
 *             .channel(frontend.getClass())                        // NioSocketChannel or EpollSocketChannel
 *             .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
 *             .option(ChannelOption.AUTO_READ, false)
 *             .handler(new ChannelInboundHandlerAdapter())         // plain TCP to the upstream
 *             .connect(upstreamHost, upstreamPort)
 *             .addListener((ChannelFuture f) -&gt; {
 *                 if (f.isSuccess()) {
 *                     TlsCloseRelay.link(frontend, f.channel()).closeFuture().addListener(r -&gt;
 *                             log.info("{} ended: {}", frontend, r.getNow()));
 *                 } else {
 *                     frontend.close();
 *                 }
 *             });
 *     ctx.pipeline().remove(this);
 * }
 * </pre>
 *
 * <p>The relay's methods may be called from any thread. The two channels may use different event loops.
 */
public final class TlsCloseRelay {

    private static final InternalLogger logger = InternalLoggerFactory.getInstance(TlsCloseRelay.class);

    /** How one side of a relay ended. */
    public enum End {
        /** Its input ended cleanly: the peer's {@code close_notify}, or a FIN on a plain side. */
        CLEAN,
        /** Its input ended without {@code close_notify} (TLS), or without a FIN (plain: reset or lost). */
        TRUNCATED,
        /** Its TLS closure timed out. */
        TIMED_OUT,
        /** Its TLS closure failed, or writing to it failed. */
        FAILED,
        /** The relay aborted it (reset, no {@code close_notify}) because the other side did not end cleanly. */
        ABORTED
    }

    /** The outcome of a relay once both channels are closed. Immutable. */
    public static final class Outcome {
        private final End frontendEnd;
        private final End backendEnd;
        private final TlsCloseEvent frontendEvent;
        private final TlsCloseEvent backendEvent;
        private final Throwable frontendCause;
        private final Throwable backendCause;

        Outcome(End frontendEnd, End backendEnd, TlsCloseEvent frontendEvent, TlsCloseEvent backendEvent,
                Throwable frontendCause, Throwable backendCause) {
            this.frontendEnd = frontendEnd;
            this.backendEnd = backendEnd;
            this.frontendEvent = frontendEvent;
            this.backendEvent = backendEvent;
            this.frontendCause = frontendCause;
            this.backendCause = backendCause;
        }

        /**
         * Returns how the frontend ended.
         *
         * @return the frontend's end
         */
        public End frontendEnd() {
            return frontendEnd;
        }

        /**
         * Returns how the backend ended.
         *
         * @return the backend's end
         */
        public End backendEnd() {
            return backendEnd;
        }

        /**
         * Returns the frontend's {@link TlsCloseEvent}, or {@code null} for a plain side or a failed handshake.
         *
         * @return the frontend's event, or {@code null}
         */
        public TlsCloseEvent frontendEvent() {
            return frontendEvent;
        }

        /**
         * Returns the backend's {@link TlsCloseEvent}, or {@code null} for a plain side or a failed handshake.
         *
         * @return the backend's event, or {@code null}
         */
        public TlsCloseEvent backendEvent() {
            return backendEvent;
        }

        /**
         * Returns why the frontend did not end {@link End#CLEAN}: its truncation, timeout or failure (a failed TLS
         * handshake included), or why the relay aborted it. {@code null} when it ended cleanly or nothing said why.
         *
         * @return the cause of the frontend's end, or {@code null}
         */
        public Throwable frontendCause() {
            return frontendEnd == End.CLEAN ? null : frontendCause;
        }

        /**
         * Returns why the backend did not end {@link End#CLEAN}, as {@link #frontendCause()} does for the frontend.
         *
         * @return the cause of the backend's end, or {@code null}
         */
        public Throwable backendCause() {
            return backendEnd == End.CLEAN ? null : backendCause;
        }

        /**
         * Returns {@code true} when both sides ended {@link End#CLEAN}.
         *
         * @return whether both sides ended cleanly
         */
        public boolean isClean() {
            return frontendEnd == End.CLEAN && backendEnd == End.CLEAN;
        }

        @Override
        public String toString() {
            return "TlsCloseRelay.Outcome(frontend " + describe(frontendEnd, frontendEvent, frontendCause())
                    + ", backend " + describe(backendEnd, backendEvent, backendCause()) + ')';
        }

        private static String describe(End end, TlsCloseEvent event, Throwable cause) {
            String s = String.valueOf(end);
            if (event != null) {
                s += " " + event;
            }
            if (cause != null && (event == null || event.cause() != cause)) {
                s += " (" + cause + ')';
            }
            return s;
        }
    }

    /**
     * How the relay tells a TLS side's peer that the other side's stream was truncated. Either way no
     * {@code close_notify} is sent, and every byte the truncated side delivered before its end is written and flushed
     * first. A plain side's peer can only be told by a reset (a FIN would be a clean end), whatever the signal.
     */
    public enum TruncationSignal {
        /**
         * A bare TCP FIN: the peer reads every byte, then an end of stream without {@code close_notify}, a truncation.
         * The side then closes once its peer ends too, or after its handler's {@code closeNotifyReadTimeout} with a
         * reset. Nothing is lost. The default.
         */
        FIN,
        /**
         * A TCP reset ({@code SO_LINGER} 0) once the bytes are flushed to the socket: what the kernel has not sent yet
         * is lost, and the peer's kernel may drop what its application has not read.
         */
        RESET
    }

    private final Side frontend;
    private final Side backend;
    private final TruncationSignal signal;
    private final Promise<Outcome> outcome = new DefaultPromise<>(GlobalEventExecutor.INSTANCE);
    private int sidesClosed;

    private TlsCloseRelay(Channel frontend, Channel backend, TruncationSignal signal) {
        this.frontend = new Side(this, frontend, "frontend");
        this.backend = new Side(this, backend, "backend");
        this.frontend.other = this.backend;
        this.backend.other = this.frontend;
        this.signal = signal;
    }

    /**
     * Links two active channels and starts relaying, with {@link TruncationSignal#FIN}. Adds a handler at the end of
     * each pipeline and switches auto-read off on both.
     *
     * @param frontend the frontend channel, typically the one the proxy accepted
     * @param backend the backend channel, typically the one the proxy opened
     * @return the relay linking the two channels
     * @throws IllegalArgumentException if a channel lacks {@link ChannelOption#ALLOW_HALF_CLOSURE}, is not a
     *         {@link DuplexChannel}, or has an {@link SslHandler} without a {@link GracefulTlsCloseHandler}, or if both
     *         arguments are the same channel
     * @throws IllegalStateException if a channel is not active
     */
    public static TlsCloseRelay link(Channel frontend, Channel backend) {
        return link(frontend, backend, TruncationSignal.FIN);
    }

    /**
     * Links two active channels and starts relaying. Adds a handler at the end of each pipeline and switches auto-read
     * off on both.
     *
     * @param frontend the frontend channel, typically the one the proxy accepted
     * @param backend the backend channel, typically the one the proxy opened
     * @param signal how a TLS side's peer learns that the other side was truncated
     * @return the relay linking the two channels
     * @throws IllegalArgumentException if a channel lacks {@link ChannelOption#ALLOW_HALF_CLOSURE}, is not a
     *         {@link DuplexChannel}, or has an {@link SslHandler} without a {@link GracefulTlsCloseHandler}, or if both
     *         arguments are the same channel
     * @throws IllegalStateException if a channel is not active
     */
    public static TlsCloseRelay link(Channel frontend, Channel backend, TruncationSignal signal) {
        Objects.requireNonNull(frontend, "frontend");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(signal, "signal");
        if (frontend == backend) {
            throw new IllegalArgumentException("frontend and backend are the same channel: " + frontend);
        }
        check(frontend, "frontend");
        check(backend, "backend");
        TlsCloseRelay relay = new TlsCloseRelay(frontend, backend, signal);
        relay.frontend.start();
        relay.backend.start();
        return relay;
    }

    private static void check(Channel ch, String name) {
        if (!(ch instanceof DuplexChannel)) {
            throw new IllegalArgumentException(name + ": " + ch + " is not a DuplexChannel (TCP): it cannot half-close");
        }
        if (!Boolean.TRUE.equals(ch.config().getOption(ChannelOption.ALLOW_HALF_CLOSURE))) {
            throw new IllegalArgumentException(name + ": ALLOW_HALF_CLOSURE is off on " + ch
                    + " (expected: ChannelOption.ALLOW_HALF_CLOSURE true, so that a FIN ends one direction only)");
        }
        if (ch.pipeline().get(SslHandler.class) != null && ch.pipeline().get(GracefulTlsCloseHandler.class) == null) {
            throw new IllegalArgumentException(name + ": " + ch + " has an SslHandler but no "
                    + GracefulTlsCloseHandler.class.getSimpleName() + " after it");
        }
        if (!ch.isActive()) {
            throw new IllegalStateException(name + ": " + ch + " is not active");
        }
    }

    /**
     * Returns the frontend channel.
     *
     * @return the frontend channel
     */
    public Channel frontend() {
        return frontend.channel;
    }

    /**
     * Returns the backend channel.
     *
     * @return the backend channel
     */
    public Channel backend() {
        return backend.channel;
    }

    /**
     * Returns a future that succeeds with the {@link Outcome} once both channels are closed. It never fails.
     *
     * @return the future of the relay's outcome
     */
    public Future<Outcome> closeFuture() {
        return outcome;
    }

    /**
     * Ends both sides abortively: TCP resets, no {@code close_notify}. Sides that ended before keep their end.
     */
    public void abort() {
        IOException cause = new IOException("relay aborted by the application");
        frontend.onLoop(() -> frontend.abort(cause));
        backend.onLoop(() -> backend.abort(cause));
    }

    private void sideClosed() {
        Outcome o;
        synchronized (this) {
            if (++sidesClosed < 2) {
                return;
            }
            o = new Outcome(frontend.end, backend.end, frontend.event, backend.event, frontend.cause, backend.cause);
        }
        outcome.trySuccess(o);
    }

    /**
     * One channel of the relay, with the handler at the end of its pipeline. Its state is read and written on its own
     * event loop only; the other side reaches it through {@link #onLoop(Runnable)}, so the two channels may use
     * different loops. Only its end, event and cause, which the outcome reports, are written under the relay's lock.
     *
     * <table class="striped">
     *   <caption>States of a side</caption>
     *   <tr><th>state</th><th>its input</th><th>its output</th><th>next</th></tr>
     *   <tr><td>OPEN</td><td>relayed</td><td>takes the other side's bytes</td>
     *       <td>INPUT_ENDED, OUTPUT_ENDING, DRAINING</td></tr>
     *   <tr><td>INPUT_ENDED</td><td>ended</td><td>takes the other side's bytes</td><td>BOTH_ENDING, DRAINING</td></tr>
     *   <tr><td>OUTPUT_ENDING</td><td>relayed</td><td>ending cleanly after its pending writes ({@code close_notify}
     *       then FIN; FIN on a plain side)</td><td>OUTPUT_ENDED (plain, FIN sent), BOTH_ENDING, DRAINING</td></tr>
     *   <tr><td>OUTPUT_ENDED</td><td>relayed</td><td>ended (plain side: FIN sent)</td><td>closes when the input
     *       ends</td></tr>
     *   <tr><td>BOTH_ENDING</td><td>ended</td><td>ending cleanly</td><td>closes once the output has ended (a TLS
     *       side's handler closes it itself)</td></tr>
     *   <tr><td>DRAINING</td><td>read and released</td><td>ended without {@code close_notify}: after its pending
     *       writes, a FIN or a reset</td><td>closes when the input ends or the wait is over</td></tr>
     *   <tr><td>CLOSING</td><td colspan="2">the relay closes it (a reset, or a close below its TLS handler);
     *       nothing more to do, whatever it reports meanwhile</td><td>CLOSED</td></tr>
     *   <tr><td>CLOSED</td><td colspan="3">its channel closed; bytes for it are undeliverable and abort the other
     *       side</td></tr>
     * </table>
     */
    private static final class Side extends ChannelInboundHandlerAdapter {

        enum State {
            OPEN, INPUT_ENDED, OUTPUT_ENDING, OUTPUT_ENDED, BOTH_ENDING, DRAINING, CLOSING, CLOSED;

            boolean relaysInput() {
                return this == OPEN || this == OUTPUT_ENDING || this == OUTPUT_ENDED;
            }

            boolean takesWrites() {
                return this == OPEN || this == INPUT_ENDED;
            }
        }

        final TlsCloseRelay relay;
        final Channel channel;
        final String name;
        final GracefulTlsCloseHandler tls;
        Side other;
        ChannelHandlerContext ctx;
        /** On its event loop only. */
        State state = State.OPEN;
        /** Under the relay's lock. */
        End end;
        TlsCloseEvent event;
        Throwable cause;

        Side(TlsCloseRelay relay, Channel channel, String name) {
            this.relay = relay;
            this.channel = channel;
            this.name = name;
            this.tls = channel.pipeline().get(GracefulTlsCloseHandler.class);
        }

        /** Runs {@code task} on this side's event loop: now if already there, else as a task, in order. */
        void onLoop(Runnable task) {
            if (channel.eventLoop().inEventLoop()) {
                task.run();
            } else {
                channel.eventLoop().execute(task);
            }
        }

        void start() {
            channel.config().setAutoRead(false);
            channel.closeFuture().addListener(f -> onLoop(this::onClosed));
            channel.eventLoop().execute(() -> {
                if (tls != null) {
                    tls.relayPeerCloseAsHalfClose();
                }
                channel.pipeline().addLast(this);
                if (!channel.isActive()) {
                    // Closed before the relay could start: the close listener settles it.
                    return;
                }
                channel.read();
            });
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!state.relaysInput()) {
                ReferenceCountUtil.release(msg);
                if (state == State.DRAINING) {
                    channel.read(); // until its end: nothing more is relayed
                }
                return;
            }
            Side to = other;
            to.onLoop(() -> to.write(msg, this));
        }

        /** On this side's loop: writes what {@code from} read, and lets {@code from} read more once it is written. */
        void write(Object msg, Side from) {
            if (!state.takesWrites()) {
                ReferenceCountUtil.release(msg);
                String why = "the " + name + (state == State.CLOSED ? " is closed" : "'s output has ended");
                from.onLoop(() -> from.undeliverable(why, null));
                return;
            }
            channel.writeAndFlush(msg).addListener((ChannelFuture f) -> {
                if (f.isSuccess()) {
                    from.onLoop(from::readMore);
                } else if (state == State.CLOSED || state == State.DRAINING || !channel.isActive()) {
                    from.onLoop(() -> from.undeliverable("writing to the " + name + " failed", f.cause()));
                } else {
                    logger.debug("{} relay write to the {} failed: aborting both sides", channel, name, f.cause());
                    setEnd(End.FAILED, f.cause());
                    relay.abort();
                }
            });
        }

        void readMore() {
            if (state.relaysInput() || state == State.DRAINING) {
                channel.read();
            }
        }

        /** Bytes read from this side can go nowhere: its peer must not believe they were delivered. */
        void undeliverable(String why, Throwable cause) {
            if (state == State.DRAINING) {
                return; // ending already, after the bytes the other side delivered
            }
            abort(new IOException("relay aborted: " + why + ", so the " + name + "'s bytes could not be delivered",
                    cause));
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                TlsCloseEvent e = (TlsCloseEvent) evt;
                synchronized (relay) {
                    event = e;
                }
                switch (e.status()) {
                    case CLOSE_NOTIFY_RECEIVED:
                        inputEndedCleanly();
                        break;
                    case TIMED_OUT:
                        inputEndedBadly(End.TIMED_OUT, e.cause());
                        break;
                    case TRUNCATED:
                        inputEndedBadly(End.TRUNCATED, e.cause());
                        break;
                    case FAILED:
                    default:
                        inputEndedBadly(End.FAILED, e.cause());
                        break;
                }
            } else if (evt instanceof ChannelInputShutdownEvent && tls == null) {
                inputEndedCleanly();
            } else if (evt instanceof SslHandshakeCompletionEvent && !((SslHandshakeCompletionEvent) evt).isSuccess()) {
                setEnd(End.FAILED, ((SslHandshakeCompletionEvent) evt).cause());
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            logger.debug("{} relay {} exception", channel, name, cause);
            if (tls == null && cause instanceof IOException && state != State.CLOSED) {
                // A plain side's reset. Under ALLOW_HALF_CLOSURE Netty keeps the channel open and follows with a
                // ChannelInputShutdownEvent, as for a FIN: it must not pass for a clean end. (A TLS side's handler
                // turns this into a TRUNCATED event itself.)
                if (state.relaysInput()) {
                    inputEndedBadly(End.TRUNCATED, cause);
                } else {
                    reset();
                }
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (state.relaysInput()) {
                // No FIN (plain) and no TlsCloseEvent (TLS handshake never succeeded): the stream was cut.
                inputEndedBadly(tls == null ? End.TRUNCATED : End.FAILED, null);
            }
            ctx.fireChannelInactive();
        }

        private void inputEndedCleanly() {
            if (!state.relaysInput() && state != State.DRAINING) {
                return;
            }
            setEnd(End.CLEAN, null);
            Side o = other;
            o.onLoop(o::endOutputAfterPendingWrites);
            switch (state) {
                case OPEN:
                    state = State.INPUT_ENDED;
                    break;
                case OUTPUT_ENDING:
                    state = State.BOTH_ENDING;
                    break;
                default: // OUTPUT_ENDED (FIN sent), DRAINING (ended by the relay): both directions are done
                    close(null);
                    break;
            }
        }

        private void inputEndedBadly(End how, Throwable cause) {
            setEnd(how, cause);
            if (state == State.DRAINING) {
                close(cause); // its peer ended after ours: done
                return;
            }
            if (!state.relaysInput()) {
                return;
            }
            state = state == State.OPEN ? State.INPUT_ENDED : State.BOTH_ENDING;
            IOException signal = new IOException("relay aborted: the " + name + " ended " + how, cause);
            other.onLoop(() -> other.truncateOutput(signal));
            if (tls == null) {
                // A plain side that was cut is reset: its bytes still on their way to it have nowhere to go.
                reset();
            }
            // A TLS side's handler closes it after a TRUNCATED, TIMED_OUT or FAILED outcome.
        }

        void setEnd(End how, Throwable why) {
            synchronized (relay) {
                if (end == null) {
                    end = how;
                    cause = why;
                }
            }
        }

        /** Ends this side's output cleanly, after the writes already issued to it. */
        void endOutputAfterPendingWrites() {
            if (!state.takesWrites()) {
                return;
            }
            state = state == State.OPEN ? State.OUTPUT_ENDING : State.BOTH_ENDING;
            if (tls != null) {
                // close_notify after the pending writes, then FIN; closes once the peer's close_notify is in.
                tls.shutdownOutput();
                return;
            }
            // An empty write completes after every write issued before it.
            channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(w -> {
                if (!w.isSuccess() || !channel.isActive()) {
                    return;
                }
                ((DuplexChannel) channel).shutdownOutput().addListener(f -> {
                    if (state == State.BOTH_ENDING) {
                        close(null); // both directions done; a TLS side closes itself once its closure completes
                    } else if (state == State.OUTPUT_ENDING) {
                        state = State.OUTPUT_ENDED;
                    }
                });
            });
        }

        /**
         * The other side's input was truncated: this side's peer must see a truncation too, never a clean end, and
         * only after every byte the other side delivered. Flushes, then signals: a reset on a plain side, else the
         * relay's {@link TruncationSignal}.
         */
        void truncateOutput(IOException cause) {
            if (state == State.CLOSED || state == State.CLOSING || state == State.DRAINING) {
                return;
            }
            setEnd(End.ABORTED, cause);
            boolean reading = state.relaysInput();
            state = State.DRAINING;
            if (tls == null || relay.signal == TruncationSignal.RESET) {
                channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> {
                    if (state == State.DRAINING) {
                        resetOrAbort(cause);
                    }
                });
                return;
            }
            channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> {
                if (state != State.DRAINING) {
                    return;
                }
                tls.relayEndsOutputWithoutCloseNotify();
                if (!reading) {
                    // Its peer had ended already: close, the kernel sends what it holds, then FIN.
                    close(cause);
                    return;
                }
                SslPipeline.shutdownTcpOutput(channel);
                // Its peer reads to the end of stream and then ends too; a peer that does not is reset.
                ScheduledFuture<?> deadline = channel.eventLoop().schedule(() -> {
                    if (state == State.DRAINING) {
                        resetOrAbort(cause);
                    }
                },
                        tls.settings.readTimeoutNanos, TimeUnit.NANOSECONDS);
                channel.closeFuture().addListener(c -> deadline.cancel(false));
            });
            if (reading) {
                channel.read(); // to see its peer's end; what it sends now is released
            }
        }

        /** Ends this side abortively at once: a reset, no {@code close_notify}. */
        void abort(Throwable cause) {
            if (state == State.CLOSED || state == State.CLOSING) {
                return;
            }
            setEnd(End.ABORTED, cause);
            state = State.DRAINING;
            resetOrAbort(cause);
        }

        private void resetOrAbort(Throwable cause) {
            if (state == State.CLOSED) {
                return;
            }
            // Before the handler's abort, which fires its event (FAILED) at once: that event must not close again.
            state = State.CLOSING;
            if (tls != null && ctx != null && !ctx.isRemoved()) {
                tls.abort(cause);
            } else {
                reset();
            }
        }

        private void reset() {
            if (channel.isActive()) {
                try {
                    channel.config().setOption(ChannelOption.SO_LINGER, 0);
                } catch (RuntimeException e) {
                    logger.debug("{} cannot set SO_LINGER 0", channel, e);
                }
            }
            close(null);
        }

        /**
         * Closes without a reset (unless one was set) and, on a TLS side, below its handler: no {@code close_notify},
         * what had to be said has been said. The outcome of a TLS side whose handler had none yet is FAILED.
         */
        private void close(Throwable cause) {
            if (state == State.CLOSED) {
                return;
            }
            state = State.CLOSING;
            if (tls != null && ctx != null && !ctx.isRemoved()) {
                tls.closeBelowTls(cause != null ? cause : new IOException("relay: both directions of the " + name
                        + " ended"));
            } else {
                channel.close();
            }
        }

        void onClosed() {
            State was = state;
            state = State.CLOSED;
            setEnd(tls == null ? End.TRUNCATED : End.FAILED, null);
            if (was == State.INPUT_ENDED || was == State.OUTPUT_ENDED) {
                // Closed from outside while the other side may still send to it: what that side sends, or is
                // sending, has nowhere to go. (Ended badly, it has signalled the other side already.)
                Side o = other;
                o.onLoop(() -> {
                    if (o.state.relaysInput()) {
                        o.undeliverable("the " + name + " closed", null);
                    }
                });
            }
            if (tls == null) {
                relay.sideClosed();
                return;
            }
            // The handler's event may come with the close (it fires before channelInactive passes it): the outcome
            // waits for it. Its future completes on every path, failed if the handshake never succeeded.
            tls.closeFuture().addListener((Future<TlsCloseEvent> f) -> {
                if (f.isSuccess()) {
                    synchronized (relay) {
                        if (event == null) {
                            event = f.getNow();
                        }
                    }
                }
                relay.sideClosed();
            });
        }
    }
}
