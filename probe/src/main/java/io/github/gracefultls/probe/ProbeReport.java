package io.github.gracefultls.probe;

import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;

import java.io.PrintStream;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What {@link RemoteProbe} found out, and how it is told: a few aligned lines and a verdict, or one JSON object.
 */
final class ProbeReport {

    final String target;
    String address;
    String provider;
    String protocol;
    String cipher;
    String certificate;
    boolean verified;
    /** {@code --http}: the path requested, the response's status line (null if none), its size in bytes. */
    String httpPath;
    String httpStatus;
    long httpBytes;
    /**
     * {@code --http}: what became of the response body, its framing ("Content-Length: 1234", "chunked", "delimited by
     * the end of the connection"), its content bytes, and for a cut body the {@code TlsTruncationException}'s message
     * (for an undecodable one the decoder's).
     */
    HttpBodyReader.Body httpBody;
    String httpFraming;
    long httpContentBytes;
    String httpBodyProblem;
    /** {@code --http}: whether the server ended the connection within {@link #timeout}. */
    boolean serverClosed = true;
    Duration timeout;
    /** Who ended the TLS session: "bye(SHUT_RDWR)", "the server, after the response", ... */
    String closedBy;
    TlsCloseEvent event;
    /** {@code bye}: the event's elapsed time; {@code --http}: the time from the request to the server's closure. */
    Duration time;

    ProbeReport(String target) {
        this.target = target;
    }

    /** Whether the closure was clean: the server's {@code close_notify} arrived, and with {@code --http} the
     *  server ended the connection itself. */
    boolean isClean() {
        return event != null && event.isClean() && serverClosed;
    }

    int exitCode() {
        return isClean() ? TlsCloseProbe.EXIT_CLEAN : TlsCloseProbe.EXIT_NOT_CLEAN;
    }

    String verdict() {
        if (event == null) {
            return "not clean: no outcome";
        }
        String time = Durations.format(this.time);
        if (httpPath != null) {
            if (!serverClosed) {
                return "not clean: the server did not close the connection within " + Durations.format(timeout)
                        + " despite \"Connection: close\"";
            }
            switch (event.status()) {
                case CLOSE_NOTIFY_RECEIVED:
                    return "clean: the server sent close_notify before closing TCP (" + time + " after the request)";
                case TRUNCATED:
                    if (event.messageState() == MessageState.BETWEEN_MESSAGES) {
                        return "not clean: the server closed TCP without close_notify, after its complete response "
                                + "(between messages: nothing was cut)";
                    }
                    return "not clean: the server closed TCP without close_notify, so a client cannot tell its "
                            + "response from a truncated one";
                default:
                    return "not clean: " + event.status() + " (" + cause() + ")";
            }
        }
        boolean peerFirst = event.initiator() == TlsCloseInitiator.PEER;
        switch (event.status()) {
            case CLOSE_NOTIFY_RECEIVED:
                return peerFirst ? "clean: the server closed first, with close_notify"
                        : "clean: the server answered our close_notify in " + time;
            case TIMED_OUT:
                return "not clean: no close_notify from the server within " + Durations.format(timeout);
            case TRUNCATED:
                return peerFirst ? "not clean: the server closed TCP first, without close_notify (truncation)"
                        : "not clean: the server closed TCP without answering our close_notify (truncation)";
            default:
                return "not clean: the closure failed (" + cause() + ")";
        }
    }

    private String bodyLine() {
        String content = httpContentBytes + " bytes of content (" + httpFraming + ")";
        switch (httpBody) {
            case COMPLETE:
                return "complete, " + content;
            case CUT:
                return "cut: " + httpBodyProblem;
            case FAILED:
                return "not decodable: " + httpBodyProblem;
            default:
                return "unfinished, " + content + " when the connection ended";
        }
    }

    private String cause() {
        return event.cause() == null ? "-" : RemoteProbe.rootMessage(event.cause());
    }

    void print(PrintStream out, boolean verbose) {
        line(out, "target", target + (address != null && !address.equals(target) ? " (" + address + ")" : ""));
        line(out, "tls", protocol + ", " + cipher + ", provider " + provider);
        line(out, "certificate", certificate + (verified ? ", verified" : ", not verified (--insecure)"));
        if (httpPath != null) {
            line(out, "request", "GET " + httpPath + " -> "
                    + (httpStatus == null ? "no response" : httpStatus + ", " + httpBytes + " bytes, headers included"));
            if (httpBody != null && httpBody != HttpBodyReader.Body.NONE) {
                line(out, "body", bodyLine());
            }
        }
        if (event != null) {
            StringBuilder closure = new StringBuilder(closedBy).append(" -> ").append(event.status())
                    .append(", initiator ").append(event.initiator()).append(", ").append(Durations.format(time));
            if (event.discardedBytes() > 0) {
                closure.append(", ").append(event.discardedBytes()).append(" bytes of application data discarded");
            }
            if (event.messageState() == MessageState.IN_MESSAGE) {
                closure.append(event.isMessageCut() ? ", in message: cut" : ", in message (its end)");
            } else if (event.messageState() == MessageState.BETWEEN_MESSAGES) {
                closure.append(", between messages");
            }
            line(out, "closure", closure.toString());
            if (event.status() != TlsCloseStatus.CLOSE_NOTIFY_RECEIVED && event.cause() != null) {
                line(out, "cause", RemoteProbe.rootMessage(event.cause()));
            }
            if (verbose) {
                line(out, "event", event.toString());
            }
        }
        out.println("verdict: " + verdict());
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("target", target);
        m.put("address", address);
        m.put("provider", provider);
        m.put("protocol", protocol);
        m.put("cipher", cipher);
        m.put("certificate", certificate);
        m.put("verified", verified);
        if (httpPath != null) {
            Map<String, Object> http = new LinkedHashMap<>();
            http.put("path", httpPath);
            http.put("status", httpStatus);
            http.put("bytes", httpBytes);
            http.put("serverClosed", serverClosed);
            http.put("body", httpBody == null ? null : httpBody.name());
            http.put("framing", httpFraming);
            http.put("contentBytes", httpContentBytes);
            http.put("truncation", httpBody == HttpBodyReader.Body.CUT ? httpBodyProblem : null);
            http.put("decoderFailure", httpBody == HttpBodyReader.Body.FAILED ? httpBodyProblem : null);
            m.put("http", http);
        }
        if (event != null) {
            Map<String, Object> closure = new LinkedHashMap<>();
            closure.put("by", closedBy);
            closure.put("status", event.status().name());
            closure.put("initiator", event.initiator().name());
            closure.put("mode", event.mode() == null ? null : event.mode().name());
            closure.put("elapsedMillis", Durations.millis(time));
            closure.put("discardedBytes", event.discardedBytes());
            closure.put("messageState", event.messageState().name());
            closure.put("messageCut", event.isMessageCut());
            closure.put("cause", event.cause() == null ? null : RemoteProbe.rootMessage(event.cause()));
            m.put("closure", closure);
        }
        m.put("clean", isClean());
        m.put("verdict", verdict());
        m.put("exitCode", exitCode());
        return m;
    }

    private static void line(PrintStream out, String key, String value) {
        out.println(String.format("%-12s %s", key, value));
    }
}
