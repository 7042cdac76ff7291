package io.github.gracefultls;

/**
 * Where the peer's stream of application messages stood when the TLS closure's outcome was decided, as marked by
 * {@link GracefulTlsCloseHandler#messageStarted()} and {@link GracefulTlsCloseHandler#messageCompleted()} (the HTTP
 * companion module marks HTTP/1.x messages and HTTP/2 streams by itself).
 *
 * <p>It tells a truncation that matters from one that does not. A peer that drops TCP after its last complete
 * message (browsers and many HTTP clients do) lost nothing: {@link #BETWEEN_MESSAGES}. A stream that ends without
 * {@code close_notify} while a message is partly received ({@link #IN_MESSAGE}) may have been cut by an attacker,
 * and that message must not be taken as complete: {@link TlsCloseEvent#isMessageCut()}.
 */
public enum MessageState {
    /** Nothing marked messages on this channel: the outcome says nothing about them. */
    UNMARKED,
    /** No inbound message was in progress: the last one had completed, or none had begun. */
    BETWEEN_MESSAGES,
    /** An inbound message had begun and not completed. */
    IN_MESSAGE
}
