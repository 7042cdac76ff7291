package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseRelay;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;

import java.net.SocketAddress;
import java.util.function.BiConsumer;

/**
 * Logs the outcome of each relay, one line per client connection:
 * <ul>
 *   <li>INFO for a clean outcome;</li>
 *   <li>INFO, with the sentence {@value #UNANSWERED_AFTER_OUR_CLOSE} (for the frontend, the client's), when a TLS
 *       side's only fault is that its peer closed TCP, at a record boundary, without answering the
 *       {@code close_notify} that we had sent first (nginx does this at every close of a TLS upstream). We had begun
 *       that side's closure because the other side had ended cleanly; what the peer had sent arrived in whole
 *       records. The relay still passes it on as a truncation, as it must: a record-boundary cut cannot be told from
 *       a complete stream;</li>
 *   <li>WARNING for everything else: a truncation the peer began, one inside a record or by a reset, a timeout, a
 *       failure (a failed handshake with its cause), an abort.</li>
 * </ul>
 * The line ends with the relay's {@link TlsCloseRelay.Outcome}, which names the cause of each side that did not end
 * cleanly.
 */
public final class OutcomeLog implements BiConsumer<SocketAddress, TlsCloseRelay.Outcome> {

    /** What an unanswered {@code close_notify} after our close is logged as, after the side's name. */
    public static final String UNANSWERED_AFTER_OUR_CLOSE =
            "closed TCP without answering our close_notify (after our close; at a record boundary)";

    private final System.Logger logger;

    /** Logs to {@code logger}. */
    public OutcomeLog(System.Logger logger) {
        this.logger = logger;
    }

    @Override
    public void accept(SocketAddress client, TlsCloseRelay.Outcome outcome) {
        logger.log(level(outcome), message(client, outcome));
    }

    /**
     * Returns the level the outcome is logged at: INFO when clean, or when each side that did not end cleanly is a
     * TLS side whose peer did not answer our {@code close_notify} (see the class comment); else WARNING.
     *
     * @param outcome the relay's outcome
     * @return INFO or WARNING
     */
    public static System.Logger.Level level(TlsCloseRelay.Outcome outcome) {
        boolean frontendFine = outcome.frontendEnd() == TlsCloseRelay.End.CLEAN
                || unansweredAfterOurClose(outcome.frontendEnd(), outcome.frontendEvent());
        boolean backendFine = outcome.backendEnd() == TlsCloseRelay.End.CLEAN
                || unansweredAfterOurClose(outcome.backendEnd(), outcome.backendEvent());
        return frontendFine && backendFine ? System.Logger.Level.INFO : System.Logger.Level.WARNING;
    }

    /**
     * Returns the line logged for {@code client}'s relay: {@code client: [sentences: ]outcome}.
     *
     * @param client  the client's address
     * @param outcome the relay's outcome
     * @return the line
     */
    public static String message(SocketAddress client, TlsCloseRelay.Outcome outcome) {
        StringBuilder b = new StringBuilder(200).append(client).append(": ");
        if (unansweredAfterOurClose(outcome.frontendEnd(), outcome.frontendEvent())) {
            b.append("client ").append(UNANSWERED_AFTER_OUR_CLOSE).append("; ");
        }
        if (unansweredAfterOurClose(outcome.backendEnd(), outcome.backendEvent())) {
            b.append("backend ").append(UNANSWERED_AFTER_OUR_CLOSE).append("; ");
        }
        return b.append(outcome).toString();
    }

    /**
     * Whether a side ended TRUNCATED only because its peer ended TCP with a FIN at a record boundary after our
     * {@code close_notify}: we began (initiator LOCAL), the input ended between records, and not by a reset or a
     * transport error (the truncation has no cause of its own).
     */
    static boolean unansweredAfterOurClose(TlsCloseRelay.End end, TlsCloseEvent event) {
        if (end != TlsCloseRelay.End.TRUNCATED || event == null || event.status() != TlsCloseStatus.TRUNCATED
                || event.initiator() != TlsCloseInitiator.LOCAL
                || !(event.cause() instanceof TlsTruncationException)) {
            return false;
        }
        TlsTruncationException truncation = (TlsTruncationException) event.cause();
        return truncation.undecodedBytes() == 0 && truncation.getCause() == null;
    }
}
