package io.github.gracefultls.interop;

import org.junit.jupiter.api.extension.AfterTestExecutionCallback;
import org.junit.jupiter.api.extension.BeforeTestExecutionCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Writes the interop matrix report, {@code target/interop-report.md}, or {@code target/interop-report-fork<N>.md}
 * for each test JVM when the build runs several ({@code interop.fork}): one row per test cell (peer, scenario, cell,
 * outcome, time, what was observed), appended as each cell ends, and a summary at the end of the run
 * ({@link InteropReportListener}), also printed to stdout. Tests add what they observed with {@link #observe}.
 */
public final class InteropReport implements BeforeTestExecutionCallback, AfterTestExecutionCallback, TestWatcher {

    /** Cells deliberately not in the matrix, and why. Written under the table. */
    static final List<String> NOT_RUN = List.of(
            "gnutls-serv, openssl s_server: peer-initiated closure, every PeerClosePolicy | in --echo / -rev mode "
                    + "they never begin a closure; peer-initiated cells use gnutls-cli, s_client, curl, nginx "
                    + "(Connection: close) and Python",
            "openssl s_server: bye(SHUT_RDWR), bye(SHUT_WR) | it answers exactly like gnutls-serv (close_notify, "
                    + "then FIN); both are covered against gnutls-serv and Python",
            "gnutls-cli, s_client, curl, nginx: PeerClosePolicy.REUSE_TRANSPORT, transport reuse | they close TCP "
                    + "right after the TLS closure; reuse is proven with Python's SSLSocket.unwrap() both ways",
            "nginx, curl: bye(SHUT_WR), HALF_CLOSE | HTTP/1.1 over TLS never half-closes nor reuses the transport",
            "our close() against gnutls-cli, s_client; curl ending a keep-alive connection: EPOLL, IO_URING | NIO "
                    + "only: the cell records what the peer answers, the transport takes no part (covered on all "
                    + "three elsewhere)",
            "plaintext written in bye()'s listener / on the REUSE_TRANSPORT event: EPOLL, IO_URING | NIO only: the "
                    + "ordering in the handler is transport independent",
            "TIMED_OUT under SHUT_WR (halfCloseTimeout), TIMED_OUT while flushing (closeNotifyFlushTimeout) | no "
                    + "real peer here keeps a half-closed connection open or stops reading on demand; covered by the "
                    + "handler's own socket tests",
            "JDK SSLSocket, HttpClient: EPOLL, IO_URING | NIO only: in-process peers over loopback, the transport "
                    + "takes no part in what they answer (covered on all three elsewhere)",
            "JDK SSLSocket, HttpClient: bye(SHUT_WR), REUSE_TRANSPORT | no JDK API reuses a transport after TLS "
                    + "(SSLSocket has no unwrap()); half-closure is covered by SSLSocket.shutdownOutput() and ours",
            "HttpClient: the client ends a keep-alive connection | Java 17 has no HttpClient.close(); idle "
                    + "connections end when the client is collected",
            "Go crypto/tls, rustls: EPOLL, IO_URING; bye(SHUT_WR), HALF_CLOSE, REUSE_TRANSPORT | NIO only: the "
                    + "peer's verdict does not depend on our transport (covered on all three elsewhere); the peers "
                    + "report how our side ended, transport reuse is proven with Python's SSLSocket.unwrap()",
            "tc netem round-trip times | not available in this kernel; everything runs on loopback",
            "HTTP/1.x companion (Http1*): an HTTP body cut by a reset, on IO_URING | Netty 4.2.18's io_uring "
                    + "transport never reports a reset queued behind unread bytes: the channel reads every byte, "
                    + "then stays open and active with no exception, no input shutdown, no channelInactive "
                    + "(deterministic when the reset is in the kernel before our first read, intermittent under "
                    + "load); cuts ended by a FIN run on all three transports",
            "HTTP/1.x companion (Http1*): nginx, curl uploads, the end between keep-alive responses, the plain "
                    + "Netty client without the companion: EPOLL, IO_URING | NIO only: what the peer sends decides "
                    + "these cells; the transports' handling of a FIN or reset under the companion is covered by the "
                    + "cut responses on every transport");

    private static final ThreadLocal<List<String>> NOTES = ThreadLocal.withInitial(ArrayList::new);
    /** Per running cell (by unique id): start time, then elapsed millis and notes. */
    private static final Map<String, Object[]> CELLS = new ConcurrentHashMap<>();
    private static final Object LOCK = new Object();
    private static final Map<String, int[]> TOTALS = new LinkedHashMap<>();
    private static final List<String> PROBLEMS = new ArrayList<>();
    private static boolean started;
    private static long startNanos;

    /** Adds a note to the "observed" column of the cell that runs on this thread. */
    static void observe(String note) {
        NOTES.get().add(note);
    }

    /** The build directory: the system property {@code interop.target}, else {@code target}. */
    static Path targetDirectory() {
        return Path.of(System.getProperty("interop.target", "target")).toAbsolutePath();
    }

    static Path reportFile() {
        String fork = System.getProperty("interop.fork", "");
        return targetDirectory().resolve(fork.isEmpty() ? "interop-report.md" : "interop-report-fork" + fork + ".md");
    }

    /**
     * Starts a fresh report, called once per run. The file, with its header and the peers' versions, is written with
     * the first cell: a launcher session that runs no cell (Maven's own, discovering tests) leaves none.
     */
    static void begin() {
        synchronized (LOCK) {
            started = true;
            startNanos = System.nanoTime();
            TOTALS.clear();
            PROBLEMS.clear();
        }
    }

    private static void writeHeader() {
        StringBuilder header = new StringBuilder()
                .append("# Interop matrix\n\n")
                .append("Java ").append(System.getProperty("java.version"))
                .append(", Netty 4.2 on ").append(System.getProperty("os.name")).append(' ')
                .append(System.getProperty("os.version")).append(". Peers: ").append(PeerVersions.describe())
                .append(".\n\n")
                .append("| peer | scenario | cell | outcome | ms | observed |\n")
                .append("| --- | --- | --- | --- | ---: | --- |\n");
        write(header.toString(), false);
    }

    /** Ends the report with the totals and the cells not run; returns the summary for stdout. */
    static String finish() {
        synchronized (LOCK) {
            if (!started || TOTALS.isEmpty()) {
                started = false;
                return "";
            }
            StringBuilder summary = new StringBuilder();
            int[] all = new int[3];
            summary.append("Interop matrix: ");
            StringBuilder perPeer = new StringBuilder();
            for (Map.Entry<String, int[]> e : TOTALS.entrySet()) {
                int[] t = e.getValue();
                for (int i = 0; i < 3; i++) {
                    all[i] += t[i];
                }
                perPeer.append(String.format("  %-22s %3d passed, %d failed, %d skipped%n", e.getKey(), t[0], t[1],
                        t[2]));
            }
            long seconds = (System.nanoTime() - startNanos) / 1_000_000_000L;
            summary.append(all[0]).append(" passed, ").append(all[1]).append(" failed, ").append(all[2])
                    .append(" skipped in ").append(seconds).append(" s; report: ").append(reportFile())
                    .append(System.lineSeparator()).append(perPeer);
            for (String problem : PROBLEMS) {
                summary.append("  ").append(problem).append(System.lineSeparator());
            }
            StringBuilder tail = new StringBuilder("\n## Summary\n\n```\n").append(summary).append("```\n\n")
                    .append("## Not in the matrix\n\n| cells | why |\n| --- | --- |\n");
            for (String line : NOT_RUN) {
                tail.append("| ").append(line).append(" |\n");
            }
            write(tail.toString(), true);
            started = false;
            return summary.toString();
        }
    }

    @Override
    public void beforeTestExecution(ExtensionContext context) {
        NOTES.get().clear();
        CELLS.put(context.getUniqueId(), new Object[] {System.nanoTime(), null});
    }

    @Override
    public void afterTestExecution(ExtensionContext context) {
        Object[] cell = CELLS.get(context.getUniqueId());
        if (cell != null) {
            cell[0] = (System.nanoTime() - (Long) cell[0]) / 1_000_000L;
            cell[1] = String.join("; ", NOTES.get());
        }
        NOTES.get().clear();
    }

    @Override
    public void testSuccessful(ExtensionContext context) {
        row(context, 0, "PASS");
    }

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        row(context, 1, "FAIL: " + firstLine(cause));
    }

    @Override
    public void testAborted(ExtensionContext context, Throwable cause) {
        row(context, 2, "SKIP: " + firstLine(cause));
    }

    @Override
    public void testDisabled(ExtensionContext context, Optional<String> reason) {
        row(context, 2, "SKIP: " + reason.orElse("disabled"));
    }

    private static void row(ExtensionContext context, int kind, String outcome) {
        String peer = context.getRequiredTestClass().getSimpleName().replaceFirst("Test$", "");
        String scenario = context.getTestMethod().map(m -> m.getName()).orElse("?");
        String cell = context.getDisplayName();
        Object[] data = CELLS.remove(context.getUniqueId());
        String millis = data == null || data[1] == null ? "" : data[0].toString();
        String notes = data == null || data[1] == null ? "" : (String) data[1];
        String line = "| " + cells(peer, scenario, cell, outcome, millis, notes) + " |\n";
        synchronized (LOCK) {
            if (!started) {
                begin();
            }
            if (TOTALS.isEmpty()) {
                writeHeader();
            }
            TOTALS.computeIfAbsent(peer, k -> new int[3])[kind]++;
            if (kind == 1) {
                PROBLEMS.add("FAILED " + peer + " " + scenario + " [" + cell + "]: " + outcome);
            }
            write(line, true);
        }
    }

    private static String cells(String... values) {
        StringBuilder sb = new StringBuilder();
        for (String v : values) {
            if (sb.length() > 0) {
                sb.append(" | ");
            }
            sb.append(v.replace("|", "\\|").replace("\n", " ").replace("\r", ""));
        }
        return sb.toString();
    }

    private static String firstLine(Throwable t) {
        String message = String.valueOf(t.getMessage());
        int newline = message.indexOf('\n');
        String first = newline < 0 ? message : message.substring(0, newline);
        return first.length() > 300 ? first.substring(0, 300) + "..." : first;
    }

    private static void write(String text, boolean append) {
        try {
            Files.createDirectories(targetDirectory());
            if (append) {
                Files.writeString(reportFile(), text, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            } else {
                Files.writeString(reportFile(), text, StandardCharsets.UTF_8);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + reportFile(), e);
        }
    }
}
