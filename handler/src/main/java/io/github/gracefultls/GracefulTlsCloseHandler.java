package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.PromiseNotifier;

import javax.net.ssl.SSLException;
import java.io.IOException;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

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
 * {@code channelInactive} reaches the handlers after this one. Its {@link TlsCloseStatus} says how the closure
 * ended: {@code CLOSE_NOTIFY_RECEIVED} is the one clean outcome; after {@code TIMED_OUT}, {@code TRUNCATED} or
 * {@code FAILED} the channel is closed, whatever was asked.
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
 * <h2>Pipelines</h2>
 * The handler goes after its {@code SslHandler}, or after a handler that puts one in place once the first bytes
 * arrived: {@link io.netty.handler.ssl.SniHandler SniHandler} (and any {@code AbstractSniHandler} or
 * {@code SslClientHelloHandler}), {@link io.netty.handler.ssl.OptionalSslHandler OptionalSslHandler}. It then binds
 * to the {@code SslHandler} when it appears, having followed the TLS record framing from the first byte, so that a
 * truncation still says whether it cut a record:
 * <pre>
 * ch.pipeline().addLast("sni", new SniHandler(mapping));
 * ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
 * </pre>
 * If {@code OptionalSslHandler} finds plaintext, the handler stays out of the way: no event, {@code close()} passes
 * through, and {@link #closeFuture()} fails with an {@link IllegalStateException} saying the connection is not TLS.
 * With neither an {@code SslHandler} nor such a handler before it, {@code handlerAdded} fails with an
 * {@link IllegalStateException}. An {@code SslHandler} added mid-stream (StartTLS) works as any other, with this
 * handler added after it.
 *
 * <p>With HTTP/2 the codec ({@code Http2ConnectionHandler}) goes after this handler: a close first sends its GOAWAY
 * and drains the open streams for up to its {@code gracefulShutdownTimeoutMillis}, then reaches this handler. That
 * grace period is 0 by default in {@code Http2FrameCodecBuilder}: the streams are then cut, and this handler logs a
 * warning (once per JVM) when a close begins with such a codec after it. Set a grace period on the codec.
 *
 * <h2>Futures</h2>
 * The futures of {@link #bye(TlsCloseMode)}, {@link #shutdownOutput()} and {@link #closeFuture()} succeed with the
 * {@link TlsCloseEvent} whatever its status: a timeout or a truncation is an outcome, not an error. They fail only
 * when the call itself is invalid: before the handshake succeeded, without a {@code SslHandler}, or on a connection
 * that turned out not to be TLS. A second
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
 * <p>This handler is not {@link ChannelHandler.Sharable}: use one instance per channel. Leave the
 * {@code SslHandler}'s own {@link SslHandler#setCloseNotifyReadTimeout(long, TimeUnit) closeNotifyReadTimeout} at 0:
 * this handler does the waiting.
 */
public final class GracefulTlsCloseHandler extends ClosureDriver {

    /** Default time allowed to flush our {@code close_notify}: {@value} ms. */
    public static final long DEFAULT_CLOSE_NOTIFY_FLUSH_TIMEOUT_MILLIS = 3000;
    /** Default time {@link TlsCloseMode#SHUT_RDWR} waits for the peer's {@code close_notify}: {@value} ms. */
    public static final long DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS = 3000;

    /**
     * Creates a handler with the defaults: 3 s to flush our {@code close_notify}, 3 s to wait for the peer's under
     * {@link TlsCloseMode#SHUT_RDWR}, no deadline under {@link TlsCloseMode#SHUT_WR}, {@link PeerClosePolicy#CLOSE}.
     */
    public GracefulTlsCloseHandler() {
        this(Settings.DEFAULT);
    }

    private GracefulTlsCloseHandler(Settings settings) {
        super(settings);
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
     * Ends the connection at once, without {@code close_notify} and with a TCP reset where the transport allows it
     * ({@code SO_LINGER} 0): the peer sees an error, never a clean end. For a proxy that must pass on a truncation
     * it received (an upstream response cut short), or an application that gives up on its peer. Writes not yet
     * flushed, and what the peer has not read yet, may be lost: flush and wait for the write first when they matter.
     *
     * <p>The outcome, unless already known, is {@link TlsCloseStatus#FAILED} with {@code cause}; the event fires as
     * for any outcome. Before the handshake succeeded (or on a connection that turned out not to be TLS) the
     * connection is reset and closed as well, and the future fails with an {@link IllegalStateException}, since
     * there is no TLS closure to report.
     *
     * @param cause why the connection is aborted; it becomes the event's {@link TlsCloseEvent#cause()}
     * @return a future that succeeds with the channel's {@link TlsCloseEvent}
     */
    public Future<TlsCloseEvent> abort(Throwable cause) {
        Objects.requireNonNull(cause, "cause");
        ChannelHandlerContext ctx = this.ctx;
        if (ctx == null) {
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(new IllegalStateException("abort() called on a "
                    + GracefulTlsCloseHandler.class.getSimpleName() + " that is not in a pipeline"));
        }
        EventExecutor executor = ctx.executor();
        Promise<TlsCloseEvent> promise = executor.newPromise();
        onEventLoop(executor, () -> {
            checkSslHandler();
            if (!handshakeSucceeded() || isNotTls()) {
                SslPipeline.resetAndClose(ctx, sslHandler, ctx.newPromise());
                promise.tryFailure(new IllegalStateException("abort() called " + (isNotTls()
                        ? "on a connection that is not TLS" : "before the TLS handshake succeeded")
                        + ": the connection was reset, and there is no TLS closure to report", cause));
            } else {
                resetNow(cause);
                closeFuture().addListener(new PromiseNotifier<>(promise));
            }
        }, () -> promise.tryFailure(new RejectedExecutionException(
                "abort(): the event loop of " + ctx.channel() + " is shut down")));
        return promise;
    }

    /**
     * Marks that an inbound application message has begun: until {@link #messageCompleted()}, an end of the stream
     * without the peer's {@code close_notify} cuts it, and the {@link TlsCloseEvent} says so
     * ({@link TlsCloseEvent#isMessageCut()}). Call it from the protocol's decoder when the first byte of a message
     * arrives, for any protocol whose messages have an end of their own; for HTTP the companion module marks
     * messages by itself. Marking is a field write on the event loop (from another thread it hops there, in order);
     * a mark after the outcome changes nothing.
     */
    public void messageStarted() {
        mark(MessageState.IN_MESSAGE);
    }

    /**
     * Marks that the inbound message in progress is complete (or that none is in progress): an end of the stream
     * now comes {@link MessageState#BETWEEN_MESSAGES}, and loses nothing that had begun.
     */
    public void messageCompleted() {
        mark(MessageState.BETWEEN_MESSAGES);
    }

    /**
     * Calls {@link #messageStarted()} on the {@code GracefulTlsCloseHandler} in the channel's pipeline, if there is
     * one. Keeping the handler and calling it directly saves a look-up per message.
     *
     * @param channel the channel whose pipeline holds the handler
     * @return whether the pipeline holds a handler
     */
    public static boolean messageStarted(Channel channel) {
        return mark(channel, MessageState.IN_MESSAGE);
    }

    /**
     * Calls {@link #messageCompleted()} on the {@code GracefulTlsCloseHandler} in the channel's pipeline, if there
     * is one.
     *
     * @param channel the channel whose pipeline holds the handler
     * @return whether the pipeline holds a handler
     */
    public static boolean messageCompleted(Channel channel) {
        return mark(channel, MessageState.BETWEEN_MESSAGES);
    }

    private static boolean mark(Channel channel, MessageState state) {
        GracefulTlsCloseHandler handler = Objects.requireNonNull(channel, "channel").pipeline()
                .get(GracefulTlsCloseHandler.class);
        if (handler != null) {
            handler.mark(state);
        }
        return handler != null;
    }

    private void mark(MessageState state) {
        ChannelHandlerContext ctx = this.ctx;
        if (ctx == null || ctx.executor().inEventLoop()) {
            messageState = state;
        } else {
            onEventLoop(ctx.executor(), () -> messageState = state, () -> { });
        }
    }

    /**
     * Returns the future of this channel's TLS closure, whoever begins it. It succeeds with the one
     * {@link TlsCloseEvent} of the channel, once the event has been fired through the pipeline, and fails with an
     * {@link IllegalStateException} if the channel ends without a successful handshake, the connection turns out not
     * to be TLS ({@code OptionalSslHandler} found plaintext), or this handler leaves the pipeline before any closure.
     * Its listeners run on the channel's event loop, also when this method is called before the handler is added to
     * a pipeline.
     *
     * @return the future of this channel's TLS closure
     */
    public Future<TlsCloseEvent> closeFuture() {
        Outcome p = Outcome.of(this);
        ChannelHandlerContext ctx = this.ctx;
        if (!p.isDone() && ctx != null) {
            // Created on demand: complete it if the outcome is known, or fail it if no outcome can come. The state
            // is read on the event loop, where a closure cannot be seen half done.
            Runnable sync = () -> {
                checkSslHandler();
                if (isNotTls()) {
                    p.tryFailure(notTls());
                } else {
                    p.sync(ctx, sslHandler, closure() == null ? null : closure().event());
                }
            };
            onEventLoop(ctx.executor(), sync, sync);
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
        checkSslHandler();
        Closure c = closure();
        if (c != null && c.event() != null && c.isTerminal()) {
            promise.trySuccess(c.event());
            return;
        }
        if (isNotTls()) {
            promise.tryFailure(new IllegalStateException(call + " called on a connection that is not TLS", notTls()));
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
            onTransportEnded(null, "the channel became inactive", false);
        } else if (shutdownOutput) {
            beginLocal(mode).shutdownOutput();
        } else {
            beginLocal(mode).bye(mode);
        }
        TlsCloseEvent event = closure().event();
        if (event != null) {
            promise.trySuccess(event);
        } else {
            Outcome.of(this).addListener(new PromiseNotifier<>(promise));
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
        private boolean failOnDataAfterCloseNotify = Settings.DEFAULT.failOnDataAfterCloseNotify;
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
         * Sets what {@link TlsCloseMode#SHUT_RDWR} ({@code close()}, {@code bye(SHUT_RDWR)}) does with application data
         * that arrives while it waits for the peer's {@code close_notify}. {@code false}, the default: it is released
         * unread and counted in {@link TlsCloseEvent#discardedBytes()}. {@code true}: the first such data ends the
         * closure {@link TlsCloseStatus#FAILED} with an {@link javax.net.ssl.SSLException}, and the transport closes,
         * as BoringSSL's {@code SSL_shutdown} does ({@code APPLICATION_DATA_ON_SHUTDOWN}): for protocols where a
         * peer that still sends after our {@code close_notify} is misbehaving. Under {@link TlsCloseMode#SHUT_WR} the
         * data is delivered either way.
         *
         * @param fail whether application data during a SHUT_RDWR wait fails the closure
         * @return this builder
         */
        public Builder failOnDataAfterCloseNotify(boolean fail) {
            this.failOnDataAfterCloseNotify = fail;
            return this;
        }

        /**
         * Returns a new handler with these settings.
         *
         * @return a new handler
         */
        public GracefulTlsCloseHandler build() {
            if (!built.sameAs(flushTimeoutNanos, readTimeoutNanos, halfCloseTimeoutNanos, peerClosePolicy,
                    failOnDataAfterCloseNotify)) {
                // Handlers built with the same settings share them: a server's builder makes one per connection.
                built = new Settings(flushTimeoutNanos, readTimeoutNanos, halfCloseTimeoutNanos, peerClosePolicy,
                        failOnDataAfterCloseNotify);
            }
            return new GracefulTlsCloseHandler(built);
        }
    }
}
