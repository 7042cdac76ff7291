package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.Transport;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.handler.codec.PrematureChannelClosureException;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * Our HTTP/1.1 client ({@code HttpClientCodec}, {@link HttpTlsTruncationHandler}, {@code HttpObjectAggregator})
 * against Python's {@code ssl} ({@code src/test/peers/http_peer.py}, OpenSSL 3.0) as a server that ends its TLS
 * stream without close_notify: inside a close-delimited, a Content-Length and a chunked body, each at a record
 * boundary and inside a record (exactly {@value #RECORD_CUT} bytes of the next record), ended by a FIN or by a reset
 * once every byte was acknowledged; and between two complete keep-alive responses. Every body is {@value #BODY}
 * bytes, cut after {@value #CUT}. And the same cuts without the companion: what a plain Netty client accepts. One
 * Python process serves every cell.
 */
class Http1PythonServerTest extends InteropTest {

    private static final int BODY = 102_400;
    private static final int CUT = 51_200;
    /** Content bytes per TLS record of the body. */
    private static final int PIECE = 6_400;
    private static final int RECORD_CUT = 100;
    private static final AtomicInteger IDS = new AtomicInteger();

    /** How the server frames its body; what the companion's message says about it. */
    enum Framing {
        CLOSE_DELIMITED("close-delimited", " (delimited by the end of the connection)"),
        CONTENT_LENGTH("content-length", " of " + BODY + " (Content-Length)"),
        CHUNKED("chunked", " (chunked)");

        final String scenario;
        final String described;

        Framing(String scenario, String described) {
            this.scenario = scenario;
            this.described = described;
        }
    }

    /** Where the server's stream ends inside the body, and how: a FIN, or a reset once every byte was acked. */
    record Cut(Framing framing, boolean insideRecord, boolean reset) {
        String scenario() {
            return "cut-" + framing.scenario + (insideRecord ? "-inside-record" : "-boundary")
                    + (reset ? "-reset" : "");
        }

        int undecodedBytes() {
            return insideRecord ? RECORD_CUT : 0;
        }

        @Override
        public String toString() {
            return framing + (insideRecord ? " inside a record" : " at a record boundary") + (reset ? ", reset" : "");
        }
    }

    /**
     * Every cut ended by a FIN on every cell (the transports differ in how a FIN reaches us), and by a reset on NIO and
     * EPOLL: Netty's IO_URING transport loses a reset queued behind unread data (see {@link #resetCells()}).
     */
    static Stream<Arguments> cutsAndCells() {
        return Stream.concat(cuts(Cell.all(), false), cuts(resetCells(), true));
    }

    /** Every cut ended by a FIN, on NIO only: what a plain Netty client accepts. */
    static Stream<Arguments> finCutsAndNioCells() {
        return cuts(Cell.nio(), false);
    }

    /** Every cut ended by a reset that is in our kernel, behind the body, before we read any of it. */
    static Stream<Arguments> queuedResetCutsAndCells() {
        return cuts(resetCells(), true);
    }

    /**
     * The cells for a reset: NIO and EPOLL. Netty 4.2.18's IO_URING transport (kernel 6.18) never reports a reset
     * that arrives while bytes before it are still unread: the channel reads every byte, then stays open and active,
     * with no exception, no input shutdown and no channelInactive. Deterministic when the reset is queued before our
     * first read ({@link #aResetQueuedBehindTheCutBodyIsSeenAfterIt}), intermittent otherwise (4 of 12 JDK cells in a
     * run on a loaded machine). A FIN reaches IO_URING channels fine.
     */
    private static Stream<Cell> resetCells() {
        return Cell.all().filter(c -> c.transport() != Transport.IO_URING);
    }

    private static Stream<Arguments> cuts(Stream<Cell> cells, boolean reset) {
        List<Cell> cellList = cells.toList();
        List<Arguments> cases = new ArrayList<>();
        for (Framing framing : Framing.values()) {
            for (boolean inside : new boolean[] {false, true}) {
                Cut cut = new Cut(framing, inside, reset);
                cellList.forEach(cell -> cases.add(Arguments.of(named(cut.toString(), cut), cell)));
            }
        }
        return cases.stream();
    }

    private PeerProcess server() {
        return shared("python-http", () -> {
            String python = Peers.requirePython().toString();
            return PeerProcess.startListening("python-http-server", port -> List.of(python,
                    PEERS_DIRECTORY.resolve("http_peer.py").toString(), "server", "--port", String.valueOf(port),
                    "--cert", pem.certificate().toString(), "--key", pem.privateKey().toString(),
                    "--body", String.valueOf(BODY), "--cut", String.valueOf(CUT), "--piece", String.valueOf(PIECE),
                    "--record-cut", String.valueOf(RECORD_CUT)), workDirectory, LISTEN);
        });
    }

    /** Our client and what its application saw. */
    private record Client(Endpoint endpoint, HttpOutcomes outcomes) {
        void get(String scenario, String id) {
            DefaultFullHttpRequest request = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET,
                    "/" + scenario + "/" + id);
            request.headers().set(HttpHeaderNames.HOST, TestHost.NAME);
            endpoint.channel.writeAndFlush(request);
        }

        HttpOutcomes.Message await() throws InterruptedException {
            return outcomes.await(AWAIT, endpoint);
        }
    }

    private Client connect(Cell cell, PeerProcess server, boolean companion) throws Exception {
        HttpOutcomes outcomes = new HttpOutcomes();
        List<ChannelHandler> app = new ArrayList<>();
        app.add(new HttpClientCodec());
        if (companion) {
            app.add(new HttpTlsTruncationHandler());
        }
        app.add(new HttpObjectAggregator(1 << 20));
        app.add(outcomes);
        Endpoint endpoint = perTest(Endpoint.connect(loops, cell, server.port(), new GracefulTlsCloseHandler(),
                app.toArray(new ChannelHandler[0])));
        return new Client(endpoint, outcomes);
    }

    private static Map<String, String> report(PeerProcess peer, String id) throws InterruptedException {
        peer.awaitStdout(id + " done=1", AWAIT);
        Map<String, String> values = new HashMap<>();
        for (String line : peer.stdout().split("\n")) {
            if (line.startsWith(id + " ")) {
                String kv = line.substring(id.length() + 1);
                int eq = kv.indexOf('=');
                values.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
        }
        return values;
    }

    /** What the server says it did: the content it sent, the record it cut, and how our side ended. */
    private static void assertServerCut(PeerProcess server, String id, Cut cut) throws InterruptedException {
        Map<String, String> peer = report(server, id);
        assertThat(peer).containsEntry("scenario", cut.scenario()).containsEntry("sent-content",
                String.valueOf(CUT));
        if (cut.insideRecord()) {
            assertThat(peer.get("cut-record")).as("bytes of the cut record sent/its size").startsWith(RECORD_CUT
                    + "/");
        } else {
            assertThat(peer).doesNotContainKey("cut-record");
        }
        String cutRecord = cut.insideRecord() ? "cut record " + peer.get("cut-record") + ", " : "";
        if (cut.reset()) {
            InteropReport.observe("server: " + cutRecord + "then reset");
            assertThat(peer).containsEntry("reset-sent", "1").doesNotContainKeys("fin-sent", "peer-end");
        } else {
            InteropReport.observe("server: " + cutRecord + "then saw " + peer.get("peer-end"));
            assertThat(peer).containsEntry("fin-sent", "1");
            assertThat(peer).as("we still said goodbye").containsEntry("peer-end", "close_notify");
        }
    }

    private static TlsTruncationException assertTruncationAt(TlsCloseEvent event, Cut cut) {
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(cause).hasMessageContaining(cut.reset() ? "the transport failed" : "shut down its output (FIN)");
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(cut.undecodedBytes());
        assertThat(cause.isInsideRecord()).as("%s", cause).isEqualTo(cut.insideRecord());
        return cause;
    }

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("cutsAndCells")
    void aCutResponseFailsWithATruncationSayingWhere(Cut cut, Cell cell) throws Exception {
        PeerProcess server = server();
        String id = "h" + IDS.incrementAndGet();
        Client client = connect(cell, server, true);

        client.get(cut.scenario(), id);

        assertCutResponse(client, cut);
        assertServerCut(server, id, cut);
    }

    /**
     * A reset that reaches our kernel behind the whole cut body before we read any of it (reading is off until the
     * server has reset): every byte is still delivered, then the reset ends the stream.
     */
    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("queuedResetCutsAndCells")
    void aResetQueuedBehindTheCutBodyIsSeenAfterIt(Cut cut, Cell cell) throws Exception {
        PeerProcess server = server();
        String id = "h" + IDS.incrementAndGet();
        Client client = connect(cell, server, true);
        Channel channel = client.endpoint.channel;
        onEventLoop(channel, () -> channel.config().setAutoRead(false));

        client.get(cut.scenario(), id);
        server.awaitStdout(id + " reset-sent=1", AWAIT);
        onEventLoop(channel, () -> channel.config().setAutoRead(true));

        assertCutResponse(client, cut);
        assertServerCut(server, id, cut);
    }

    /** The cut response fails, saying where; the outcome says a message was cut, and came first. */
    private static void assertCutResponse(Client client, Cut cut) throws Exception {
        HttpOutcomes.Message response = client.await();
        TlsCloseEvent event = client.endpoint.awaitEvent();

        InteropReport.observe(describe(event));
        InteropReport.observe(response.toString());
        TlsTruncationException tls = assertTruncationAt(event, cut);
        assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE);
        assertThat(event.isMessageCut()).isTrue();
        assertThat(event.toString()).contains(", in message");
        assertThat(response.status()).isEqualTo(200);
        assertThat(response.success()).as("decoder result of the cut %s", response).isFalse();
        assertThat(response.cause()).isInstanceOf(TlsTruncationException.class)
                .hasMessage("the TLS stream ended without the peer's close_notify (TRUNCATED) inside an HTTP "
                        + "response body, after " + CUT + " bytes of content" + cut.framing().described);
        TlsTruncationException cause = (TlsTruncationException) response.cause();
        assertThat(cause.getCause()).isSameAs(tls);
        assertThat(cause.undecodedBytes()).isEqualTo(cut.undecodedBytes());
        assertThat(cause.isInsideRecord()).isEqualTo(cut.insideRecord());
        assertBytes(response.content(), lines(CUT), "the content before the cut");
        assertThat(client.outcomes.timeline()).as("the outcome, then the failed response").containsExactly(event,
                response);
        client.endpoint.assertClosedWithOneEvent();
        assertThat(client.outcomes.remaining()).isEmpty();
    }

    /**
     * The same cuts without the companion: the numbers behind the issue. A close-delimited body aggregates to a
     * successful response with the {@value #CUT} bytes that came; a cut Content-Length or chunked body gives the
     * application no message at all, only an exception; and nothing marks messages.
     */
    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("finCutsAndNioCells")
    void withoutTheCompanionAPlainNettyClientTakesACloseDelimitedCutAsComplete(Cut cut, Cell cell)
            throws Exception {
        PeerProcess server = server();
        String id = "h" + IDS.incrementAndGet();
        Client client = connect(cell, server, false);

        client.get(cut.scenario(), id);
        TlsCloseEvent event = client.endpoint.awaitEvent();
        client.endpoint.awaitClosed();
        client.endpoint.rec.awaitInactive(AWAIT);

        InteropReport.observe(describe(event));
        assertTruncationAt(event, cut);
        assertThat(event.messageState()).isEqualTo(MessageState.UNMARKED);
        assertThat(event.isMessageCut()).isFalse();
        List<Throwable> exceptions = client.endpoint.rec.exceptions();
        if (cut.framing() == Framing.CLOSE_DELIMITED) {
            HttpOutcomes.Message response = client.await();
            InteropReport.observe("plain Netty: " + response);
            assertThat(response.status()).isEqualTo(200);
            assertThat(response.success()).as("Netty takes the end of the stream as the end of the body").isTrue();
            assertBytes(response.content(), lines(CUT), "the cut body, as if complete");
            assertThat(exceptions).isEmpty();
        } else {
            InteropReport.observe("plain Netty: no message; exceptions " + exceptions);
            assertThat(client.outcomes.remaining()).as("messages of a cut %s body", cut.framing()).isEmpty();
            assertThat(client.outcomes.timeline()).containsExactly(event);
            assertThat(exceptions).singleElement().isInstanceOf(PrematureChannelClosureException.class);
        }
        assertServerCut(server, id, cut);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void anEndBetweenTwoKeepAliveResponsesCutsNoMessage(Cell cell) throws Exception {
        PeerProcess server = server();
        String id = "h" + IDS.incrementAndGet();
        Client client = connect(cell, server, true);

        client.get("between-messages", id);
        HttpOutcomes.Message first = client.await();
        client.get("between-messages", id);
        HttpOutcomes.Message second = client.await();
        TlsCloseEvent event = client.endpoint.awaitEvent();

        InteropReport.observe(describe(event));
        TlsTruncationException tls = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(tls.undecodedBytes()).as("%s", tls).isZero();
        assertThat(event.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(event.isMessageCut()).isFalse();
        assertThat(event.toString()).contains(", between messages");
        // The aggregator rewrites the framing headers; the server reports how it framed each body (below).
        assertThat(first.success()).as("%s", first).isTrue();
        assertBytes(first.content(), lines(BODY), "the first response's body");
        assertThat(second.success()).as("%s", second).isTrue();
        assertBytes(second.content(), lines(BODY), "the second response's body");
        assertThat(client.outcomes.timeline()).containsExactly(first, second, event);
        client.endpoint.assertClosedWithOneEvent();
        Map<String, String> peer = report(server, id);
        assertThat(peer).containsEntry("response-1", "content-length").containsEntry("response-2", "chunked")
                .containsEntry("fin-sent", "1").containsEntry("peer-end", "close_notify");
        assertThat(client.endpoint.channel.closeFuture().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
    }
}
