package io.github.gracefultls;

import java.time.Duration;
import java.util.Objects;

/**
 * The outcome of the TLS closure of one channel. {@link GracefulTlsCloseHandler} fires exactly one per channel whose
 * handshake succeeded, as a user event, before {@code channelInactive} reaches the handlers after it, and completes
 * {@link GracefulTlsCloseHandler#closeFuture()} with the same instance.
 *
 * <pre>
 * public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
 *     if (evt instanceof TlsCloseEvent) {
 *         TlsCloseEvent e = (TlsCloseEvent) evt;
 *         if (!e.isClean()) {
 *             log.warn("{} TLS stream not cleanly closed: {}", ctx.channel(), e, e.cause());
 *         }
 *     }
 *     ctx.fireUserEventTriggered(evt);
 * }
 * </pre>
 *
 * <p>Instances are immutable.
 */
public final class TlsCloseEvent {

    private final TlsCloseStatus status;
    private final TlsCloseInitiator initiator;
    private final TlsCloseMode mode;
    /** Kept in nanoseconds: a Duration is made when asked for, not for every closure. */
    private final long elapsedNanos;
    private final Throwable cause;
    private final long discardedBytes;
    private final MessageState messageState;

    TlsCloseEvent(TlsCloseStatus status, TlsCloseInitiator initiator, TlsCloseMode mode, long elapsedNanos,
                  Throwable cause, long discardedBytes, MessageState messageState) {
        this.status = Objects.requireNonNull(status, "status");
        this.initiator = Objects.requireNonNull(initiator, "initiator");
        this.mode = mode;
        if (elapsedNanos < 0) {
            throw new IllegalArgumentException("elapsedNanos: " + elapsedNanos + " (expected: >= 0)");
        }
        this.elapsedNanos = elapsedNanos;
        this.cause = cause;
        this.discardedBytes = discardedBytes;
        this.messageState = Objects.requireNonNull(messageState, "messageState");
    }

    /**
     * Returns the outcome.
     *
     * @return the outcome
     */
    public TlsCloseStatus status() {
        return status;
    }

    /**
     * Returns {@code true} when the peer's {@code close_notify} arrived: {@code status() == CLOSE_NOTIFY_RECEIVED}.
     *
     * @return whether the closure was clean
     */
    public boolean isClean() {
        return status == TlsCloseStatus.CLOSE_NOTIFY_RECEIVED;
    }

    /**
     * Returns which side began the closure.
     *
     * @return the side that began the closure
     */
    public TlsCloseInitiator initiator() {
        return initiator;
    }

    /**
     * Returns the mode of the local closure, or {@code null} when the peer began and this side never called
     * {@code bye}, {@code shutdownOutput} or {@code close}.
     *
     * @return the local closure's mode, or {@code null}
     */
    public TlsCloseMode mode() {
        return mode;
    }

    /**
     * Returns the time from the start of our shutdown to the outcome, read from the channel executor's clock, or
     * {@link Duration#ZERO} if the peer began.
     *
     * @return the duration of the closure
     */
    public Duration elapsed() {
        return Duration.ofNanos(elapsedNanos);
    }

    /**
     * Returns why the closure was not clean, or {@code null} when it was.
     *
     * @return the cause, or {@code null}
     */
    public Throwable cause() {
        return cause;
    }

    /**
     * Returns the number of application bytes released unread while waiting for the peer's {@code close_notify}
     * under {@link TlsCloseMode#SHUT_RDWR}.
     *
     * @return the number of discarded bytes
     */
    public long discardedBytes() {
        return discardedBytes;
    }

    /**
     * Returns where the peer's stream of application messages stood when the outcome was decided:
     * {@link MessageState#UNMARKED} unless something marked messages
     * ({@link GracefulTlsCloseHandler#messageStarted()}, the HTTP companion module).
     *
     * @return the message state at the outcome
     */
    public MessageState messageState() {
        return messageState;
    }

    /**
     * Returns {@code true} when the stream ended without the peer's {@code close_notify} while an inbound message was
     * in progress: {@code !isClean() && messageState() == IN_MESSAGE}. That message may have been cut short by an
     * attacker and must not be taken as complete. A truncation {@link MessageState#BETWEEN_MESSAGES} lost nothing
     * that had begun; with {@link MessageState#UNMARKED} nobody knows.
     *
     * @return whether an unclean end cut an inbound message
     */
    public boolean isMessageCut() {
        return messageState == MessageState.IN_MESSAGE && !isClean();
    }

    /**
     * Returns a one-line description, for example {@code TlsCloseEvent(CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR, 1.2ms)}.
     * The elapsed time is rounded half-up to whole microseconds below one millisecond ({@code 850us}), to tenths of a
     * millisecond below one second ({@code 13.9ms}), else to tenths of a second ({@code 2.5s}). When messages are
     * marked, {@code in message} or {@code between messages} follows the elapsed time, as in
     * {@code TlsCloseEvent(TRUNCATED, PEER, -, 0us, in message, TlsTruncationException: ...)}.
     */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder(64).append("TlsCloseEvent(")
                .append(status).append(", ").append(initiator).append(", ")
                .append(mode == null ? "-" : mode.name()).append(", ");
        Durations.append(b, elapsedNanos);
        if (messageState == MessageState.IN_MESSAGE) {
            b.append(", in message");
        } else if (messageState == MessageState.BETWEEN_MESSAGES) {
            b.append(", between messages");
        }
        if (discardedBytes > 0) {
            b.append(", discarded ").append(discardedBytes).append(" B");
        }
        if (cause != null) {
            b.append(", ").append(cause.getClass().getSimpleName());
            if (cause.getMessage() != null) {
                b.append(": ").append(cause.getMessage());
            }
        }
        return b.append(')').toString();
    }
}
