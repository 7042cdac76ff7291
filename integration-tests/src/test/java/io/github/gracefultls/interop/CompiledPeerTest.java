package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.PeerClosePolicy;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.testing.PeerProcess;
import io.netty.buffer.Unpooled;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The compiled foreign peers, Go's {@code crypto/tls} ({@link GoPeerTest}) and rustls ({@link RustlsPeerTest}): one
 * program each ({@code src/test/peers/go}, {@code src/test/peers/rustls}, built by {@link ForeignPeers}) with the same
 * command line and output, so the same cases run against both. The peer reaches its own verdict on how our side of
 * the stream ended and prints it as {@code "<id> peer-end=close_notify|eof|reset|..."}: a test asserts our
 * {@link TlsCloseEvent} and that verdict.
 *
 * <p>Both directions, on the four provider x protocol cells over NIO (the transport takes no part in what the peer
 * answers, and is covered on all three elsewhere): our server against the peer's client (one process per case), the
 * peer's server (one process for the class) against our client. Per direction: our closure by {@code close()},
 * {@code bye(SHUT_RDWR)} and {@code shutdownOutput()}; our truncation (a FIN below TLS), which the peer must see as
 * one, so that its clean verdicts mean something; the peer's close_notify with the connection kept open
 * ({@code CloseWrite} / {@code send_close_notify}) and with the socket closed at once; the peer's FIN without
 * close_notify.
 */
abstract class CompiledPeerTest extends InteropTest {

    private static final AtomicInteger IDS = new AtomicInteger();

    /** The peer's binary, built on first use; skips (locally) or fails (CI) without its tools. */
    abstract Path binary();

    /** "go", "rustls": names the peer's processes and logs. */
    abstract String name();

    /**
     * The server key for the peer: SEC 1 with its public key ({@link #sec1Key}). rustls 0.20 signs with ring 0.16,
     * which rejects the JDK's PKCS#8 EC key (no public key inside); Go reads either.
     */
    private Path serverKey() {
        return sec1Key;
    }

    /**
     * What else this peer reports after our truncation (its verdict {@code eof} is asserted already); for the Go peer,
     * that {@code Conn.Read} itself took it for an end of stream.
     */
    void assertPeerReportOfOurTruncation(Map<String, String> peer) {
    }

    /** How our side ends a connection. */
    enum OurClose {
        CLOSE(TlsCloseMode.SHUT_RDWR),
        BYE_SHUT_RDWR(TlsCloseMode.SHUT_RDWR),
        SHUTDOWN_OUTPUT(TlsCloseMode.SHUT_WR);

        final TlsCloseMode mode;

        OurClose(TlsCloseMode mode) {
            this.mode = mode;
        }

        /** Starts the closure; returns its outcome. */
        TlsCloseEvent run(Endpoint ours) throws Exception {
            switch (this) {
                case CLOSE:
                    ours.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
                    return ours.awaitEvent();
                case BYE_SHUT_RDWR:
                    return ours.await(ours.handler.bye(TlsCloseMode.SHUT_RDWR));
                default:
                    return ours.await(ours.handler.shutdownOutput());
            }
        }

        /** After a clean closure: closed, or (a clean bye) handed back as plaintext, then closed. */
        void assertAfterCleanClosure(Endpoint ours) throws Exception {
            if (this == BYE_SHUT_RDWR) {
                ours.assertHandedBackAsPlaintext();
                ours.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
            } else {
                ours.assertClosedWithOneEvent();
            }
        }

        @Override
        public String toString() {
            switch (this) {
                case CLOSE:
                    return "close()";
                case BYE_SHUT_RDWR:
                    return "bye(SHUT_RDWR)";
                default:
                    return "shutdownOutput()";
            }
        }
    }

    /** The peer's scenarios in which it sends its close_notify first. */
    enum PeerCloses {
        /** close_notify, the connection kept open: the peer reads our answer and reports it. */
        CLOSE_NOTIFY("close-notify"),
        /** close_notify, then the socket closes at once (Go's Conn.Close; rustls, then the socket dropped). */
        CLOSE("close");

        final String scenario;

        PeerCloses(String scenario) {
            this.scenario = scenario;
        }

        @Override
        public String toString() {
            return scenario;
        }
    }

    static Stream<Arguments> ourClosesAndCells() {
        return Stream.of(OurClose.values()).flatMap(c -> Cell.nio().map(cell -> Arguments.of(c, cell)));
    }

    static Stream<Arguments> peerClosesAndCells() {
        return Stream.of(PeerCloses.values()).flatMap(c -> Cell.nio().map(cell -> Arguments.of(c, cell)));
    }

    private static String newId() {
        return "c" + IDS.incrementAndGet();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    /** Waits for the peer's "id done=1" and returns what it reported for this connection. */
    private static Map<String, String> report(PeerProcess peer, String id) throws InterruptedException {
        try {
            peer.awaitStdout(id + " done=1", AWAIT);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\n" + peer.output(), e);
        }
        Map<String, String> values = new HashMap<>();
        for (String line : peer.stdout().split("\n")) {
            if (line.startsWith(id + " ")) {
                String kv = line.substring(id.length() + 1);
                int eq = kv.indexOf('=');
                values.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
        }
        InteropReport.observe("peer: " + values.getOrDefault("peer-end", "-") + " (raw-end "
                + values.getOrDefault("raw-end", "-") + ", sent " + values.getOrDefault("sent", "-") + ")");
        return values;
    }

    /** The peer's verdict that our close_notify ended its stream, at a record boundary, before any EOF of its own. */
    private static void assertPeerSawCloseNotify(Map<String, String> peer, String why) {
        assertThat(peer).as("%s; the peer's report %s", why, peer)
                .containsEntry("peer-end", "close_notify")
                .containsEntry("raw-end", "boundary")
                .containsEntry("data-before-end", "0")
                .doesNotContainKey("error");
    }

    private static void assertPeerTruncation(TlsCloseEvent event) {
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(event.mode()).as("mode of %s", event).isNull();
        assertThat(cause.isInsideRecord()).as("%s", cause).isFalse();
        assertThat(cause.undecodedBytes()).as("%s", cause).isZero();
    }

    /** Our FIN below TLS, no close_notify: the first handler's close() bypasses ssl and tls-close. */
    private static void truncate(Endpoint ours) throws Exception {
        ours.channel.eventLoop().submit(() -> ours.channel.pipeline().firstContext().close())
                .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our server, the peer's client (one process per case)
    // ------------------------------------------------------------------------------------------------------------

    private OurServer ourServer(Cell cell) throws Exception {
        return perTest(OurServer.start(loops, cell, () -> GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(LONG_TIMEOUT).halfCloseTimeout(LONG_TIMEOUT)
                .peerClosePolicy(PeerClosePolicy.CLOSE).build(), List::of));
    }

    private PeerProcess client(String scenario, Cell cell, int port, String id) {
        return perTest(PeerProcess.start(name() + "-client-" + scenario, List.of(binary().toString(), "client",
                "--port", String.valueOf(port), "--ca", pem.caCertificate().toString(), "--protocol",
                cell.protocol(), "--scenario", scenario, "--id", id), workDirectory));
    }

    /** Starts the peer's client, answers its HELLO with OK: from there it plays {@code scenario}. */
    private Endpoint acceptAndAnswer(OurServer server, PeerProcess client, String id) throws Exception {
        Endpoint ours;
        try {
            ours = server.awaitAccepted();
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\n" + client.output(), e);
        }
        String hello = "HELLO " + id + " ";
        ours.rec.awaitCondition(r -> r.receivedString().endsWith("\n"), AWAIT, "the peer's HELLO line");
        assertThat(ours.rec.receivedString()).startsWith(hello);
        ours.channel.writeAndFlush(Unpooled.copiedBuffer("OK " + id + "\n", StandardCharsets.US_ASCII))
                .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        return ours;
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("ourClosesAndCells")
    void ourServerClosesAndTheClientSeesCloseNotify(OurClose close, Cell cell) throws Exception {
        OurServer server = ourServer(cell);
        String id = newId();
        PeerProcess client = client("await-close", cell, server.port(), id);
        Endpoint ours = acceptAndAnswer(server, client, id);

        TlsCloseEvent event = close.run(ours);

        InteropReport.observe(describe(event));
        Map<String, String> peer = report(client, id);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, close.mode);
        assertThat(event.discardedBytes()).isZero();
        assertPeerSawCloseNotify(peer, "our " + close);
        assertThat(peer).containsEntry("ok", "1").containsEntry("protocol", cell.protocol())
                .containsEntry("sent", "close_notify");
        assertBytes(ours.rec.receivedBytes(), ascii("HELLO " + id + " await-close\n"), "what the client sent");
        close.assertAfterCleanClosure(ours);
        assertThat(client.awaitExit(AWAIT)).as("the client's exit code; %s", client.output()).isZero();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourServerTruncatesAndTheClientSeesNoCloseNotify(Cell cell) throws Exception {
        OurServer server = ourServer(cell);
        String id = newId();
        PeerProcess client = client("await-close", cell, server.port(), id);
        Endpoint ours = acceptAndAnswer(server, client, id);
        client.awaitStdout(id + " ok=1", AWAIT); // our OK was read: the truncation comes after whole records

        truncateAndAssertThePeerSawIt(ours, client, id);
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("peerClosesAndCells")
    void clientClosesFirstAndWeAnswer(PeerCloses closes, Cell cell) throws Exception {
        OurServer server = ourServer(cell);
        String id = newId();
        PeerProcess client = client(closes.scenario, cell, server.port(), id);
        Endpoint ours = acceptAndAnswer(server, client, id);

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        Map<String, String> peer = report(client, id);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertClosedWithOneEvent();
        assertThat(peer).containsEntry("ok", "1").containsEntry("sent", "close_notify");
        if (closes == PeerCloses.CLOSE_NOTIFY) {
            assertPeerSawCloseNotify(peer, "our answer to the client's close_notify");
        }
        assertBytes(ours.rec.receivedBytes(), ascii("HELLO " + id + " " + closes.scenario + "\n"),
                "what the client sent");
        assertThat(client.awaitExit(AWAIT)).as("the client's exit code; %s", client.output()).isZero();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void clientFinWithoutCloseNotifyIsTruncated(Cell cell) throws Exception {
        OurServer server = ourServer(cell);
        String id = newId();
        PeerProcess client = client("drop", cell, server.port(), id);
        Endpoint ours = acceptAndAnswer(server, client, id);

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        Map<String, String> peer = report(client, id);
        assertPeerTruncation(event);
        ours.assertClosedWithOneEvent();
        assertThat(peer).containsEntry("sent", "fin");
        assertPeerSawCloseNotify(peer, "we still say goodbye after the client's FIN");
        assertBytes(ours.rec.receivedBytes(), ascii("HELLO " + id + " drop\n"), "what the client sent");
        assertThat(client.awaitExit(AWAIT)).as("the client's exit code; %s", client.output()).isZero();
    }

    // ------------------------------------------------------------------------------------------------------------
    // The peer's server (one process for the class), our client
    // ------------------------------------------------------------------------------------------------------------

    private PeerProcess peerServer() {
        return shared(name() + "-server", () -> PeerProcess.startListening(name() + "-server",
                port -> List.of(binary().toString(), "server", "--port", String.valueOf(port), "--cert",
                        pem.certificate().toString(), "--key", serverKey().toString()), workDirectory, LISTEN));
    }

    /** Connects our client, says HELLO with {@code scenario}; returns once the server's OK line arrived. */
    private Endpoint connectAndHello(Cell cell, PeerProcess server, String id, String scenario) throws Exception {
        Endpoint ours = perTest(Endpoint.connect(loops, cell, server.port(), GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(LONG_TIMEOUT).halfCloseTimeout(LONG_TIMEOUT).build()));
        ours.channel.writeAndFlush(Unpooled.copiedBuffer("HELLO " + id + " " + scenario + "\n",
                StandardCharsets.US_ASCII)).get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        byte[] ok = ascii("OK " + id + "\n");
        try {
            ours.rec.awaitBytes(ok.length, AWAIT);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\n" + server.output(), e);
        }
        return ours;
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("ourClosesAndCells")
    void ourClientClosesAndTheServerSeesCloseNotify(OurClose close, Cell cell) throws Exception {
        PeerProcess server = peerServer();
        String id = newId();
        Endpoint ours = connectAndHello(cell, server, id, "await-close");

        TlsCloseEvent event = close.run(ours);

        InteropReport.observe(describe(event));
        Map<String, String> peer = report(server, id);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, close.mode);
        assertThat(event.discardedBytes()).isZero();
        assertPeerSawCloseNotify(peer, "our " + close);
        assertThat(peer).containsEntry("protocol", cell.protocol()).containsEntry("sent", "close_notify");
        assertBytes(ours.rec.receivedBytes(), ascii("OK " + id + "\n"), "what the server sent");
        close.assertAfterCleanClosure(ours);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourClientTruncatesAndTheServerSeesNoCloseNotify(Cell cell) throws Exception {
        PeerProcess server = peerServer();
        String id = newId();
        Endpoint ours = connectAndHello(cell, server, id, "await-close");

        truncateAndAssertThePeerSawIt(ours, server, id);
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("peerClosesAndCells")
    void serverClosesFirstAndWeAnswer(PeerCloses closes, Cell cell) throws Exception {
        PeerProcess server = peerServer();
        String id = newId();
        Endpoint ours = connectAndHello(cell, server, id, closes.scenario);

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        Map<String, String> peer = report(server, id);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertClosedWithOneEvent();
        assertThat(peer).containsEntry("sent", "close_notify");
        if (closes == PeerCloses.CLOSE_NOTIFY) {
            assertPeerSawCloseNotify(peer, "our answer to the server's close_notify");
        }
        assertBytes(ours.rec.receivedBytes(), ascii("OK " + id + "\n"), "what the server sent");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void serverFinWithoutCloseNotifyIsTruncated(Cell cell) throws Exception {
        PeerProcess server = peerServer();
        String id = newId();
        Endpoint ours = connectAndHello(cell, server, id, "drop");

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        Map<String, String> peer = report(server, id);
        assertPeerTruncation(event);
        ours.assertClosedWithOneEvent();
        assertThat(peer).containsEntry("sent", "fin");
        assertPeerSawCloseNotify(peer, "we still say goodbye after the server's FIN");
        assertBytes(ours.rec.receivedBytes(), ascii("OK " + id + "\n"), "what the server sent");
    }

    /** We end with a FIN below TLS: our event is TRUNCATED, and the peer reports an end without close_notify. */
    private void truncateAndAssertThePeerSawIt(Endpoint ours, PeerProcess peerProcess, String id) throws Exception {
        truncate(ours);

        TlsCloseEvent event = ours.awaitEvent();
        InteropReport.observe(describe(event));
        Map<String, String> peer = report(peerProcess, id);
        assertThat(event.status()).as("%s", event).isEqualTo(TlsCloseStatus.TRUNCATED);
        ours.assertClosedWithOneEvent();
        assertThat(peer).as("a FIN without close_notify, at a record boundary; the peer's report %s", peer)
                .containsEntry("peer-end", "eof").containsEntry("raw-end", "boundary")
                .doesNotContainKey("sent");
        assertPeerReportOfOurTruncation(peer);
    }
}
