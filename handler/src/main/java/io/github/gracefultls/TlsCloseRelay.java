package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.Promise;

import java.io.IOException;
import java.time.Duration;
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
 *   <li>turns a truncation on one side ({@link TlsCloseStatus#TRUNCATED}, a reset, a close without FIN) into a
 *       truncation of the other, never a {@code close_notify}, and only after every byte the truncated side delivered
 *       has been written and flushed: by default a TCP reset ({@code SO_LINGER} 0) once the peer has had a drain
 *       period to read what the kernel still holds, or, on request and on a TLS side only, a bare FIN
 *       ({@link TruncationSignal});</li>
 *   <li>aborts a side whose bytes can no longer be delivered (the other side closed, or its output ended), so that
 *       its peer does not believe they were; a side whose other side closed after its clean end is read on, and
 *       ends clean if its peer ends cleanly without another byte;</li>
 *   <li>aborts both sides when one times out or fails, or when {@link #abort()} is called.</li>
 * </ul>
 * Both channels need {@link ChannelOption#ALLOW_HALF_CLOSURE} on; {@link #link(Channel, Channel)} fails otherwise.
 * A handler before the relay's own (added last) must pass {@code exceptionCaught} on: on a plain side a reset is
 * told only by the exception, and a handler that swallows it makes the reset look like a clean FIN.
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
 * <p>The relay's methods may be called from any thread. The two channels may use different event loops: each side's
 * state is read and written on its own channel's event loop only, and what one side needs of the other runs on the
 * other's loop as a task, in order. Using one loop for both (as in the example) saves those hops.
 */
public final class TlsCloseRelay {

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
        /**
         * The relay ended it without {@code close_notify} (a bare FIN or a reset) because the other side did not end
         * cleanly, its bytes could not be delivered, or {@link TlsCloseRelay#abort()} was called.
         */
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
     * How the relay tells a side's peer that the other side's stream was truncated. Either way no {@code close_notify}
     * is sent, every byte the truncated side delivered is written and flushed first, and the side then stays open for
     * the relay's drain period at most. A plain side's peer can only be told by a reset (a FIN would be a clean end):
     * it always gets {@link #RESET}.
     */
    public enum TruncationSignal {
        /**
         * A TCP reset ({@code SO_LINGER} 0) at the end of the drain period, or when the side is closed before it: the
         * peer reads what its kernel holds, then a connection reset, which every TLS stack reports as an error. What
         * the side's kernel has not sent when the reset goes (a peer that does not read within the drain period) is
         * lost. The default.
         */
        RESET,
        /**
         * A bare TCP FIN at once: the peer reads every byte, then an end of stream without {@code close_notify}.
         * Nothing is lost, but only peers that check for {@code close_notify} see a truncation; many report a clean
         * end (see the project's docs/proxy.md). The side closes once its peer ends too, or resets at the end of the
         * drain period.
         */
        FIN
    }

    /** The drain period of {@link #link(Channel, Channel)}. */
    public static final Duration DEFAULT_DRAIN = Duration.ofSeconds(3);

    private final RelaySide frontend;
    private final RelaySide backend;
    final TruncationSignal signal;
    final long drainNanos;
    private final Promise<Outcome> outcome = new DefaultPromise<>(GlobalEventExecutor.INSTANCE);
    private int sidesClosed;

    private TlsCloseRelay(Channel frontend, Channel backend, TruncationSignal signal, long drainNanos) {
        this.frontend = new RelaySide(this, frontend, "frontend");
        this.backend = new RelaySide(this, backend, "backend");
        this.frontend.other = this.backend;
        this.backend.other = this.frontend;
        this.signal = signal;
        this.drainNanos = drainNanos;
    }

    /**
     * Links two active channels and starts relaying, with {@link TruncationSignal#RESET} and a drain period of
     * {@link #DEFAULT_DRAIN}. Adds a handler at the end of each pipeline and switches auto-read off on both.
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
        return link(frontend, backend, TruncationSignal.RESET, DEFAULT_DRAIN);
    }

    /**
     * Links two active channels and starts relaying. Adds a handler at the end of each pipeline and switches auto-read
     * off on both.
     *
     * @param frontend the frontend channel, typically the one the proxy accepted
     * @param backend the backend channel, typically the one the proxy opened
     * @param signal how a side's peer learns that the other side was truncated
     * @param drain how long a side stays open after its last byte is flushed, for its peer to read it (and, with
     *        {@link TruncationSignal#FIN}, to end); then it is reset. Positive.
     * @return the relay linking the two channels
     * @throws IllegalArgumentException if {@code drain} is not positive, if a channel lacks
     *         {@link ChannelOption#ALLOW_HALF_CLOSURE}, is not a {@link DuplexChannel}, or has an {@link SslHandler}
     *         without a {@link GracefulTlsCloseHandler}, or if both channels are the same
     * @throws IllegalStateException if a channel is not active
     */
    public static TlsCloseRelay link(Channel frontend, Channel backend, TruncationSignal signal, Duration drain) {
        Objects.requireNonNull(frontend, "frontend");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(signal, "signal");
        long drainNanos = Settings.positive(drain, "drain");
        if (frontend == backend) {
            throw new IllegalArgumentException("frontend and backend are the same channel: " + frontend);
        }
        check(frontend, "frontend");
        check(backend, "backend");
        TlsCloseRelay relay = new TlsCloseRelay(frontend, backend, signal, drainNanos);
        relay.frontend.start();
        relay.backend.start();
        return relay;
    }

    private static void check(Channel ch, String name) {
        if (!(ch instanceof DuplexChannel)) {
            throw new IllegalArgumentException(name + ": " + ch
                    + " is not a DuplexChannel (TCP): it cannot half-close");
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

    /** Called once per side, when its channel is closed and its handler's event known. */
    void sideClosed() {
        Outcome o;
        synchronized (this) {
            if (++sidesClosed < 2) {
                return;
            }
            o = new Outcome(frontend.end, backend.end, frontend.event, backend.event, frontend.cause, backend.cause);
        }
        outcome.trySuccess(o);
    }
}
