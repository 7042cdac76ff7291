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
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.Promise;
import io.netty.util.internal.logging.InternalLogger;
import io.netty.util.internal.logging.InternalLoggerFactory;

import java.io.IOException;
import java.util.Objects;

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

        Outcome(End frontendEnd, End backendEnd, TlsCloseEvent frontendEvent, TlsCloseEvent backendEvent) {
            this.frontendEnd = frontendEnd;
            this.backendEnd = backendEnd;
            this.frontendEvent = frontendEvent;
            this.backendEvent = backendEvent;
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
         * Returns {@code true} when both sides ended {@link End#CLEAN}.
         *
         * @return whether both sides ended cleanly
         */
        public boolean isClean() {
            return frontendEnd == End.CLEAN && backendEnd == End.CLEAN;
        }

        @Override
        public String toString() {
            return "TlsCloseRelay.Outcome(frontend " + frontendEnd + (frontendEvent == null ? "" : " " + frontendEvent)
                    + ", backend " + backendEnd + (backendEvent == null ? "" : " " + backendEvent) + ')';
        }
    }

    private final Side frontend;
    private final Side backend;
    private final Promise<Outcome> outcome = new DefaultPromise<>(GlobalEventExecutor.INSTANCE);

    private TlsCloseRelay(Channel frontend, Channel backend) {
        this.frontend = new Side(this, frontend, "frontend");
        this.backend = new Side(this, backend, "backend");
        this.frontend.other = this.backend;
        this.backend.other = this.frontend;
    }

    /**
     * Links two active channels and starts relaying. Adds a handler at the end of each pipeline and switches auto-read
     * off on both.
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
        Objects.requireNonNull(frontend, "frontend");
        Objects.requireNonNull(backend, "backend");
        if (frontend == backend) {
            throw new IllegalArgumentException("frontend and backend are the same channel: " + frontend);
        }
        check(frontend, "frontend");
        check(backend, "backend");
        TlsCloseRelay relay = new TlsCloseRelay(frontend, backend);
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
        frontend.abort(cause);
        backend.abort(cause);
    }

    private synchronized void sideClosed() {
        if (frontend.closed && backend.closed && !outcome.isDone()) {
            outcome.trySuccess(new Outcome(frontend.end, backend.end, frontend.event, backend.event));
        }
    }

    /** One channel of the relay, with the handler at the end of its pipeline. Its fields change on its event loop. */
    private static final class Side extends ChannelInboundHandlerAdapter {
        final TlsCloseRelay relay;
        final Channel channel;
        final String name;
        final GracefulTlsCloseHandler tls;
        Side other;
        ChannelHandlerContext ctx;
        /** Its input ended (cleanly or not): nothing more will be read from it. */
        volatile boolean inputEnded;
        /** We began ending its output, or aborted it. */
        boolean outputEnding;
        /** Plain side: its output is shut down (FIN sent after every write). */
        boolean outputDone;
        volatile boolean closed;
        volatile End end;
        volatile TlsCloseEvent event;

        Side(TlsCloseRelay relay, Channel channel, String name) {
            this.relay = relay;
            this.channel = channel;
            this.name = name;
            this.tls = channel.pipeline().get(GracefulTlsCloseHandler.class);
        }

        void start() {
            channel.config().setAutoRead(false);
            channel.eventLoop().execute(() -> {
                if (tls != null) {
                    tls.relayPeerCloseAsHalfClose();
                }
                channel.pipeline().addLast(this);
                if (!channel.isActive()) {
                    // Closed before the relay could start: the close listener below settles it.
                    return;
                }
                channel.read();
            });
            channel.closeFuture().addListener(f -> onClosed());
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            Side to = other;
            if (to.closed || to.outputEnding) {
                ReferenceCountUtil.release(msg);
                return;
            }
            to.channel.writeAndFlush(msg).addListener((ChannelFuture f) -> {
                if (f.isSuccess()) {
                    if (!inputEnded) {
                        channel.read();
                    }
                } else if (!to.closed) {
                    logger.debug("{} relay write to the {} failed: aborting both sides", channel, to.name, f.cause());
                    to.setEnd(End.FAILED);
                    relay.abort();
                }
            });
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                TlsCloseEvent e = (TlsCloseEvent) evt;
                event = e;
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
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            logger.debug("{} relay {} exception", channel, name, cause);
            if (tls == null && cause instanceof IOException && !inputEnded) {
                // A plain side's reset. Under ALLOW_HALF_CLOSURE Netty keeps the channel open and follows with a
                // ChannelInputShutdownEvent, as for a FIN: it must not pass for a clean end. (A TLS side's handler
                // turns this into a TRUNCATED event itself.)
                inputEndedBadly(End.TRUNCATED, cause);
                abort(cause);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (!inputEnded) {
                // No FIN (plain) and no TlsCloseEvent (TLS handshake never succeeded): the stream was cut.
                inputEndedBadly(tls == null ? End.TRUNCATED : End.FAILED, null);
            }
            ctx.fireChannelInactive();
        }

        private void inputEndedCleanly() {
            if (inputEnded) {
                return;
            }
            inputEnded = true;
            setEnd(End.CLEAN);
            other.endOutputAfterPendingWrites();
            if (tls == null && outputDone) {
                channel.close(); // both directions done; a TLS side closes itself once its closure completes
            }
        }

        private void inputEndedBadly(End how, Throwable cause) {
            inputEnded = true;
            setEnd(how);
            other.abort(new IOException("relay aborted: the " + name + " ended " + how, cause));
        }

        void setEnd(End how) {
            synchronized (relay) {
                if (end == null) {
                    end = how;
                }
            }
        }

        /** Ends this side's output, after the writes already issued to it. Runs on this side's event loop. */
        void endOutputAfterPendingWrites() {
            channel.eventLoop().execute(() -> {
                if (closed || outputEnding) {
                    return;
                }
                outputEnding = true;
                if (tls != null) {
                    // close_notify after the pending writes, then FIN; closes once the peer's close_notify is in.
                    tls.shutdownOutput();
                } else {
                    // An empty write completes after every write issued before it.
                    channel.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(w -> {
                        if (!w.isSuccess() || !channel.isActive()) {
                            return;
                        }
                        ((DuplexChannel) channel).shutdownOutput().addListener(f -> {
                            outputDone = true;
                            if (inputEnded) {
                                channel.close();
                            }
                        });
                    });
                }
            });
        }

        void abort(Throwable cause) {
            channel.eventLoop().execute(() -> {
                if (closed) {
                    return;
                }
                setEnd(End.ABORTED);
                inputEnded = true;
                outputEnding = true;
                if (tls != null && ctx != null && !ctx.isRemoved()) {
                    tls.abort(cause);
                } else {
                    if (channel.isActive()) {
                        try {
                            channel.config().setOption(ChannelOption.SO_LINGER, 0);
                        } catch (RuntimeException e) {
                            logger.debug("{} cannot set SO_LINGER 0", channel, e);
                        }
                    }
                    channel.close();
                }
            });
        }

        void onClosed() {
            closed = true;
            if (end == null) {
                setEnd(tls == null ? End.TRUNCATED : End.FAILED);
            }
            if (tls != null && event == null) {
                Future<TlsCloseEvent> f = tls.closeFuture();
                if (f.isSuccess()) {
                    event = f.getNow();
                }
            }
            if (!other.closed && !other.inputEnded) {
                // This side is gone; whatever the other still sends has nowhere to go.
                if (end != End.CLEAN) {
                    other.abort(new IOException("relay aborted: the " + name + " closed " + end));
                }
            }
            relay.sideClosed();
        }
    }
}
