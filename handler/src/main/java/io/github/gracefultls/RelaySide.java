package io.github.gracefultls;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

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
final class RelaySide extends ChannelInboundHandlerAdapter {

    private static final InternalLogger logger = InternalLoggerFactory.getInstance(TlsCloseRelay.class);

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
    RelaySide other;
    ChannelHandlerContext ctx;
    /** On its event loop only. */
    State state = State.OPEN;
    /** Under the relay's lock. */
    TlsCloseRelay.End end;
    TlsCloseEvent event;
    Throwable cause;

    RelaySide(TlsCloseRelay relay, Channel channel, String name) {
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
        RelaySide to = other;
        to.onLoop(() -> to.write(msg, this));
    }

    /** On this side's loop: writes what {@code from} read, and lets {@code from} read more once it is written. */
    void write(Object msg, RelaySide from) {
        if (!state.takesWrites()) {
            ReferenceCountUtil.release(msg);
            String why = "the " + name + (state == State.CLOSED ? " closed" : "'s output has ended");
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
                setEnd(TlsCloseRelay.End.FAILED, f.cause());
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
                    inputEndedBadly(TlsCloseRelay.End.TIMED_OUT, e.cause());
                    break;
                case TRUNCATED:
                    inputEndedBadly(TlsCloseRelay.End.TRUNCATED, e.cause());
                    break;
                case FAILED:
                default:
                    inputEndedBadly(TlsCloseRelay.End.FAILED, e.cause());
                    break;
            }
        } else if (evt instanceof ChannelInputShutdownEvent && tls == null) {
            inputEndedCleanly();
        } else if (evt instanceof SslHandshakeCompletionEvent && !((SslHandshakeCompletionEvent) evt).isSuccess()) {
            // No session, so no outcome will come, and a FIN from the peer after its alert never ends a half-closing
            // side: end it now, and tell the other side's peer, which may be waiting for us to speak first.
            inputEndedBadly(TlsCloseRelay.End.FAILED, ((SslHandshakeCompletionEvent) evt).cause());
            reset();
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
                inputEndedBadly(TlsCloseRelay.End.TRUNCATED, cause);
            } else {
                reset();
            }
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (state.relaysInput()) {
            // No FIN (plain) and no TlsCloseEvent (TLS handshake never succeeded): the stream was cut.
            inputEndedBadly(tls == null ? TlsCloseRelay.End.TRUNCATED : TlsCloseRelay.End.FAILED, null);
        }
        ctx.fireChannelInactive();
    }

    private void inputEndedCleanly() {
        if (!state.relaysInput() && state != State.DRAINING) {
            return;
        }
        setEnd(TlsCloseRelay.End.CLEAN, null);
        RelaySide o = other;
        o.onLoop(o::endOutputAfterPendingWrites);
        switch (state) {
            case OPEN:
                state = State.INPUT_ENDED;
                break;
            case OUTPUT_ENDING:
                state = State.BOTH_ENDING;
                break;
            case DRAINING:
                closeIfFinSent(null);
                break;
            default: // OUTPUT_ENDED: FIN sent, both directions are done
                close(null);
                break;
        }
    }

    private void inputEndedBadly(TlsCloseRelay.End how, Throwable cause) {
        setEnd(how, cause);
        if (state == State.DRAINING) {
            closeIfFinSent(cause);
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

    void setEnd(TlsCloseRelay.End how, Throwable why) {
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
     * The other side's input was truncated: this side's peer must see a truncation too, never a clean end, and only
     * after every byte the other side delivered. Flushes them; then, by the relay's
     * {@link TlsCloseRelay.TruncationSignal} (a plain side always takes RESET):
     * <ul>
     *   <li>RESET: stays open for the relay's drain period, so that its peer can read what the kernel still holds
     *       (a reset discards what it has not sent), then resets; every close from now on is a reset, the handler's
     *       included;</li>
     *   <li>FIN: a bare FIN, then closes once its peer ends too, or resets at the end of the drain period.</li>
     * </ul>
     * What its peer sends meanwhile is read and released.
     */
    void truncateOutput(IOException cause) {
        if (state == State.CLOSED || state == State.CLOSING || state == State.DRAINING) {
            return;
        }
        setEnd(TlsCloseRelay.End.ABORTED, cause);
        boolean reading = state.relaysInput();
        state = State.DRAINING;
        boolean fin = tls != null && relay.signal == TlsCloseRelay.TruncationSignal.FIN;
        if (!fin) {
            SslPipeline.resetOnClose(channel);
        }
        // An empty write completes after every write issued before it.
        channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> {
            if (state != State.DRAINING) {
                return;
            }
            if (fin) {
                tls.relayEndsOutputWithoutCloseNotify();
                if (!reading) {
                    // Its peer had ended already: close, the kernel sends what it holds, then FIN.
                    close(cause);
                    return;
                }
                SslPipeline.shutdownTcpOutput(channel);
            }
            ScheduledFuture<?> deadline = channel.eventLoop().schedule(() -> {
                if (state == State.DRAINING) {
                    resetOrAbort(cause);
                }
            }, relay.drainNanos, TimeUnit.NANOSECONDS);
            channel.closeFuture().addListener(c -> deadline.cancel(false));
        });
        if (reading) {
            channel.read(); // to see its peer's end; what it sends now is released
        }
    }

    /**
     * Its peer ended while DRAINING. After a bare FIN both directions are done: close. Before a reset, its peer may
     * still be reading (a half-close): the drain period runs on; a TLS side's handler may close it meanwhile, with a
     * reset as set.
     */
    private void closeIfFinSent(Throwable cause) {
        if (tls != null && relay.signal == TlsCloseRelay.TruncationSignal.FIN) {
            close(cause);
        }
    }

    /** Ends this side abortively at once: a reset, no {@code close_notify}. */
    void abort(Throwable cause) {
        if (state == State.CLOSED || state == State.CLOSING) {
            return;
        }
        setEnd(TlsCloseRelay.End.ABORTED, cause);
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
            tls.resetNow(cause);
        } else {
            reset();
        }
    }

    private void reset() {
        SslPipeline.resetOnClose(channel);
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
        setEnd(tls == null ? TlsCloseRelay.End.TRUNCATED : TlsCloseRelay.End.FAILED, null);
        if (was == State.INPUT_ENDED || was == State.OUTPUT_ENDED) {
            // Closed from outside while the other side may still send to it. That side is read on: what it sends now
            // has nowhere to go and aborts it (write); if it ends cleanly instead, nothing was lost. A silent peer is
            // bounded by the handler's half-close timeout or the application's idle handling, as in any half-closed
            // relay. (Ended badly, this side has signalled the other side already.)
            RelaySide o = other;
            o.onLoop(o::readMore);
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
