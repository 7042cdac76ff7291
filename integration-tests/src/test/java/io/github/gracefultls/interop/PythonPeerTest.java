package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.PeerClosePolicy;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.github.gracefultls.testing.TlsRecords;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * Python's {@code ssl} module (OpenSSL 3.0 underneath) through {@code src/test/peers/tls_peer.py}: the closures the
 * command-line tools cannot do. Transport reuse with {@code SSLSocket.unwrap()} in both directions, with the plaintext
 * in the same TCP segment as the close_notify and after a round trip; a peer that never answers; data after our
 * close_notify; a FIN at a record boundary and inside a record. As a server, one Python process per scenario serves
 * all cells; as a client, one process per cell. The peer reports what it saw on stdout as "id key=value" lines.
 */
class PythonPeerTest extends InteropTest {

    /** Plaintext that fits one TCP segment together with a close_notify record. */
    private static final int SAME_SEGMENT = 1000;
    /** Plaintext sent after a round trip: several segments. */
    private static final int SPLIT = 100_000;
    private static final int DATA_AFTER_CLOSE_NOTIFY = 5000;
    private static final int CUT_AT = 10;
    private static final Duration SHORT_TIMEOUT = Duration.ofMillis(300);
    private static final Duration SLACK = Duration.ofSeconds(2);
    private static final AtomicInteger IDS = new AtomicInteger();

    private PeerProcess pythonServer(String scenario, int size) {
        return shared("python-" + scenario, () -> {
            String python = Peers.requirePython().toString();
            return PeerProcess.startListening("python-server-" + scenario, port -> List.of(python,
                    script(), "server", "--scenario", scenario, "--port", String.valueOf(port),
                    "--cert", pem.certificate().toString(), "--key", pem.privateKey().toString(),
                    "--size", String.valueOf(size)), workDirectory, LISTEN);
        });
    }

    private PeerProcess pythonClient(String scenario, Cell cell, int port, int size, String id) {
        String python = Peers.requirePython().toString();
        return perTest(PeerProcess.start("python-client-" + scenario, List.of(python, script(), "client",
                "--scenario", scenario, "--port", String.valueOf(port), "--ca", pem.caCertificate().toString(),
                "--protocol", cell.protocol(), "--size", String.valueOf(size), "--id", id), workDirectory));
    }

    private static String script() {
        return PEERS_DIRECTORY.resolve("tls_peer.py").toString();
    }

    private static String newId() {
        return "c" + IDS.incrementAndGet();
    }

    /** A Python peer that ends its stream with a FIN, no close_notify: its scenario, the bytes of a cut record. */
    private record Fin(String scenario, int cutAt) {
        boolean insideRecord() {
            return cutAt > 0;
        }
    }

    static Stream<Arguments> finsAndCells() {
        return Stream.of(named("at a record boundary", new Fin("truncate-boundary", 0)),
                named("inside a record", new Fin("truncate-inside-record", CUT_AT)))
                .flatMap(fin -> Cell.all().map(cell -> Arguments.of(fin, cell)));
    }

    /** Waits for the peer's "id done=1" and returns what it reported for this connection. */
    private static Map<String, String> report(PeerProcess peer, String id) throws InterruptedException {
        peer.awaitStdout(id + " done=1", AWAIT);
        return reportSoFar(peer, id);
    }

    private static Map<String, String> reportSoFar(PeerProcess peer, String id) {
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

    private Endpoint connectAndHello(Cell cell, PeerProcess server, String id, GracefulTlsCloseHandler handler)
            throws Exception {
        return connectAndHello(cell, server, id, null, handler);
    }

    private Endpoint connectAndHello(Cell cell, PeerProcess server, String id, RecvByteBufAllocator reads,
                                     GracefulTlsCloseHandler handler) throws Exception {
        Endpoint client = perTest(Endpoint.connect(loops, cell, server.port(), reads, handler));
        client.channel.writeAndFlush(Unpooled.copiedBuffer("HELLO " + id + "\n", StandardCharsets.US_ASCII));
        server.awaitStdout(id + " scenario=", AWAIT);
        return client;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    /**
     * Asserts that one raw read carried the peer's close_notify record and, right after it, the whole plaintext: they
     * arrived in the same TCP segment, and the SslHandler's leftover bytes reached the application as plaintext.
     */
    private static void assertCloseNotifyAndPlaintextInOneRead(Endpoint ours, Cell cell, byte[] plaintext) {
        List<byte[]> reads = ours.tap.reads();
        byte[] read = null;
        for (byte[] r : reads) {
            if (r.length > plaintext.length
                    && Arrays.equals(r, r.length - plaintext.length, r.length, plaintext, 0, plaintext.length)) {
                read = r;
            }
        }
        List<Integer> sizes = new ArrayList<>();
        reads.forEach(r -> sizes.add(r.length));
        assertThat(read).as("a raw read with a TLS record and then the plaintext; read sizes %s", sizes).isNotNull();
        List<TlsRecords.Record> records = TlsRecords.parse(Arrays.copyOf(read, read.length - plaintext.length));
        TlsRecords.Record last = records.get(records.size() - 1);
        assertThat(last.type()).as("the record before the plaintext: the close_notify (%s)", last)
                .isEqualTo(cell.isTls13() ? TlsRecords.APPLICATION_DATA : TlsRecords.ALERT);
        InteropReport.observe("close_notify + " + plaintext.length + " B plaintext in one read of " + read.length
                + " B");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our client, Python server
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void byeShutRdwrAnsweredByUnwrapWithPlaintextInTheSameSegment(Cell cell) throws Exception {
        PeerProcess server = pythonServer("answer-unwrap-same", SAME_SEGMENT);
        String id = newId();
        Endpoint client = connectAndHello(cell, server, id, Endpoint.WHOLE_SEGMENT_READS, GracefulTlsCloseHandler
                .builder().closeNotifyReadTimeout(LONG_TIMEOUT).build());

        TlsCloseEvent event = client.await(client.handler.bye(TlsCloseMode.SHUT_RDWR));

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.discardedBytes()).isZero();
        client.assertHandedBackAsPlaintext();
        byte[] plaintext = lines(SAME_SEGMENT);
        client.rec.awaitBytes(plaintext.length, AWAIT);
        assertBytes(client.rec.receivedBytes(), plaintext, "the plaintext after the peer's close_notify");
        assertCloseNotifyAndPlaintextInOneRead(client, cell, plaintext);

        // And the other way: our plaintext on the same transport reaches the peer.
        client.channel.writeAndFlush(Unpooled.copiedBuffer("PLAIN-FROM-NETTY " + id + "\n", StandardCharsets.US_ASCII))
                .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        server.awaitStdout(id + " plain-from-peer=PLAIN-FROM-NETTY " + id, AWAIT);
        client.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        Map<String, String> peer = report(server, id);
        assertThat(peer).containsEntry("data-before-close-notify", "0").containsEntry("after-plaintext", "0");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void byeShutRdwrAnsweredByUnwrapWithPlaintextAfterARoundTrip(Cell cell) throws Exception {
        PeerProcess server = pythonServer("answer-unwrap-split", SPLIT);
        String id = newId();
        Endpoint client = connectAndHello(cell, server, id, GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(LONG_TIMEOUT).build());

        TlsCloseEvent event = client.await(client.handler.bye(TlsCloseMode.SHUT_RDWR));

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        client.assertHandedBackAsPlaintext();
        assertThat(client.rec.receivedBytes()).isEmpty();
        // The peer waits for our plaintext line before it sends its plaintext.
        client.channel.writeAndFlush(Unpooled.copiedBuffer("PLAIN-FROM-NETTY " + id + "\n", StandardCharsets.US_ASCII))
                .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        byte[] plaintext = lines(SPLIT);
        client.rec.awaitBytes(plaintext.length, AWAIT);
        assertBytes(client.rec.receivedBytes(), plaintext, "the plaintext after the TLS closure");
        client.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        Map<String, String> peer = report(server, id);
        assertThat(peer).containsEntry("plain-from-peer", "PLAIN-FROM-NETTY " + id);
        InteropReport.observe(plaintext.length + " B plaintext each way after unwrap()");
    }

    /**
     * The natural way to reuse the transport: write the plaintext when {@code bye()} completes. Its listener must see
     * the transport already handed back (SPEC: a clean bye leaves the transport reusable).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void plaintextWrittenWhenByeCompletesReachesThePeer(Cell cell) throws Exception {
        PeerProcess server = pythonServer("answer-unwrap-split", SPLIT);
        String id = newId();
        Endpoint client = connectAndHello(cell, server, id, GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(LONG_TIMEOUT).build());
        CompletableFuture<List<String>> pipelineInListener = new CompletableFuture<>();
        CompletableFuture<ChannelFuture> write = new CompletableFuture<>();

        Future<TlsCloseEvent> bye = client.handler.bye(TlsCloseMode.SHUT_RDWR);
        bye.addListener(f -> {
            pipelineInListener.complete(client.channel.pipeline().names());
            write.complete(client.channel.writeAndFlush(
                    Unpooled.copiedBuffer("PLAIN-FROM-NETTY " + id + "\n", StandardCharsets.US_ASCII)));
        });

        TlsCloseEvent event = bye.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        ChannelFuture written = write.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        written.await(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        List<String> names = pipelineInListener.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        InteropReport.observe("pipeline in bye()'s listener: " + names + "; write: "
                + (written.cause() == null ? "ok" : written.cause().toString()));
        assertThat(written.cause()).as("the plaintext written in bye()'s listener (pipeline then: %s)", names)
                .isNull();
        assertThat(names).as("pipeline when bye()'s future completes").doesNotContain("ssl", "tls-close");
        client.rec.awaitBytes(SPLIT, AWAIT);
        assertBytes(client.rec.receivedBytes(), lines(SPLIT), "the peer's plaintext after the TLS closure");
        client.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(report(server, id)).containsEntry("plain-from-peer", "PLAIN-FROM-NETTY " + id);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void closeAgainstAPeerThatNeverAnswersTimesOut(Cell cell) throws Exception {
        PeerProcess server = pythonServer("never-answer", 0);
        String id = newId();
        Endpoint client = connectAndHello(cell, server, id, GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(SHORT_TIMEOUT).build());

        client.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);

        TlsCloseEvent event = client.awaitEvent();
        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).isGreaterThanOrEqualTo(SHORT_TIMEOUT)
                .isLessThan(client.lateness.allow(SHORT_TIMEOUT.plus(SLACK)));
        client.assertClosedWithOneEvent();
        Map<String, String> peer = report(server, id);
        assertThat(peer).as("the peer got our close_notify, then our FIN")
                .containsEntry("close-notify-received", "1").containsEntry("bytes-after-close-notify", "0");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void dataAfterOurCloseNotifyIsDiscardedAndCounted(Cell cell) throws Exception {
        PeerProcess server = pythonServer("data-after-close-notify", DATA_AFTER_CLOSE_NOTIFY);
        String id = newId();
        Endpoint client = connectAndHello(cell, server, id, GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(LONG_TIMEOUT).build());

        client.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);

        TlsCloseEvent event = client.awaitEvent();
        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.discardedBytes()).isEqualTo(DATA_AFTER_CLOSE_NOTIFY);
        assertThat(client.rec.receivedBytes()).isEmpty();
        client.assertClosedWithOneEvent();
        assertThat(report(server, id)).containsEntry("data-sent-after-close-notify",
                String.valueOf(DATA_AFTER_CLOSE_NOTIFY)).containsEntry("unwrapped", "1");
    }

    @ParameterizedTest(name = "FIN {0}, {1}")
    @MethodSource("finsAndCells")
    void serverFinWithoutCloseNotifyIsTruncated(Fin fin, Cell cell) throws Exception {
        PeerProcess server = pythonServer(fin.scenario(), fin.cutAt());
        String id = newId();
        Endpoint client = connectAndHello(cell, server, id, new GracefulTlsCloseHandler());

        TlsCloseEvent event = client.awaitEvent();

        InteropReport.observe(describe(event));
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(event.mode()).isNull();
        assertThat(cause.isInsideRecord()).as("%s", cause).isEqualTo(fin.insideRecord());
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(fin.cutAt());
        client.assertClosedWithOneEvent();
        // At a record boundary the peer's last record was whole: its data reached us.
        assertBytes(client.rec.receivedBytes(), ascii(fin.insideRecord() ? "" : "last words\n"),
                "the data before the FIN");
        Map<String, String> peer = report(server, id);
        InteropReport.observe((peer.containsKey("cut-record") ? "peer cut " + peer.get("cut-record") + ", then saw: "
                : "peer saw: ") + peer.get("peer-end"));
        assertThat(peer).as("we still said goodbye").containsEntry("peer-end", "close_notify");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our server, Python client
    // ------------------------------------------------------------------------------------------------------------

    private OurServer serverWith(Cell cell, PeerClosePolicy policy) throws Exception {
        return serverWith(cell, null, policy);
    }

    private OurServer serverWith(Cell cell, RecvByteBufAllocator reads, PeerClosePolicy policy) throws Exception {
        return perTest(OurServer.start(loops, cell, reads,
                () -> GracefulTlsCloseHandler.builder().peerClosePolicy(policy).build(), List::of));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void peerUnwrapWithPlaintextInTheSameSegmentReusesTheTransport(Cell cell) throws Exception {
        OurServer server = serverWith(cell, Endpoint.WHOLE_SEGMENT_READS, PeerClosePolicy.REUSE_TRANSPORT);
        String id = newId();
        PeerProcess client = pythonClient("initiate-unwrap-same", cell, server.port(), SAME_SEGMENT, id);
        Endpoint ours = server.awaitAccepted();

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertHandedBackAsPlaintext();
        byte[] hello = ascii("HELLO " + id + "\n");
        byte[] plaintext = lines(SAME_SEGMENT);
        ours.rec.awaitBytes(hello.length + plaintext.length, AWAIT);
        assertBytes(ours.rec.receivedBytes(), concat(hello, plaintext),
                "TLS data, then the plaintext after the peer's close_notify");
        assertCloseNotifyAndPlaintextInOneRead(ours, cell, plaintext);

        ours.channel.writeAndFlush(Unpooled.copiedBuffer("PLAIN-FROM-NETTY " + id + "\n", StandardCharsets.US_ASCII));
        ours.rec.awaitEvent(ChannelInputShutdownEvent.class, AWAIT); // the peer's FIN, on the plaintext transport
        ours.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        Map<String, String> peer = report(client, id);
        assertThat(peer).containsEntry("unwrapped", "1").containsEntry("plain-from-peer", "PLAIN-FROM-NETTY " + id);
        assertThat(client.awaitExit(AWAIT)).isZero();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void peerUnwrapThenPlaintextAfterARoundTripReusesTheTransport(Cell cell) throws Exception {
        OurServer server = serverWith(cell, PeerClosePolicy.REUSE_TRANSPORT);
        String id = newId();
        PeerProcess client = pythonClient("initiate-unwrap-split", cell, server.port(), SPLIT, id);
        Endpoint ours = server.awaitAccepted();

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertHandedBackAsPlaintext();
        byte[] hello = ascii("HELLO " + id + "\n");
        ours.rec.awaitBytes(hello.length, AWAIT);
        // SSLSocket.unwrap() returned once our close_notify arrived: the peer now waits for our plaintext line.
        client.awaitStdout(id + " unwrapped=1", AWAIT);
        ours.channel.writeAndFlush(Unpooled.copiedBuffer("PLAIN-FROM-NETTY " + id + "\n", StandardCharsets.US_ASCII));
        byte[] plaintext = lines(SPLIT);
        ours.rec.awaitBytes(hello.length + plaintext.length, AWAIT);
        assertBytes(ours.rec.receivedBytes(), concat(hello, plaintext), "TLS data, then plaintext");
        ours.rec.awaitEvent(ChannelInputShutdownEvent.class, AWAIT);
        ours.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(report(client, id)).containsEntry("plain-from-peer", "PLAIN-FROM-NETTY " + id);
        assertThat(client.awaitExit(AWAIT)).isZero();
    }

    /**
     * The other natural way: answer the peer's closure, under REUSE_TRANSPORT, with plaintext when the TlsCloseEvent
     * arrives. The event says the TLS session is over, so what is written then must go out as plaintext, after our
     * close_notify.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void plaintextWrittenOnThePeersCloseEventReachesThePeer(Cell cell) throws Exception {
        String id = newId();
        CompletableFuture<ChannelFuture> write = new CompletableFuture<>();
        CompletableFuture<List<String>> pipelineAtEvent = new CompletableFuture<>();
        OurServer server = perTest(OurServer.start(loops, cell,
                () -> GracefulTlsCloseHandler.builder().peerClosePolicy(PeerClosePolicy.REUSE_TRANSPORT).build(),
                () -> List.of(new ChannelInboundHandlerAdapter() {
                    @Override
                    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                        ctx.fireUserEventTriggered(evt);
                        if (evt instanceof TlsCloseEvent && ((TlsCloseEvent) evt).isClean()) {
                            pipelineAtEvent.complete(ctx.pipeline().names());
                            write.complete(ctx.writeAndFlush(Unpooled.copiedBuffer(
                                    "PLAIN-FROM-NETTY " + id + "\n", StandardCharsets.US_ASCII)));
                        }
                    }
                })));
        PeerProcess client = pythonClient("initiate-unwrap-split", cell, server.port(), SPLIT, id);
        Endpoint ours = server.awaitAccepted();

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ChannelFuture written = write.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        written.await(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        List<String> names = pipelineAtEvent.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        InteropReport.observe("pipeline at the event: " + names + "; write: "
                + (written.cause() == null ? "ok" : written.cause().toString()));
        assertThat(written.cause()).as("the plaintext written on the event (pipeline then: %s)", names).isNull();
        try {
            client.awaitStdout(id + " plain-from-peer=", AWAIT);
        } catch (AssertionError e) {
            InteropReport.observe("peer: " + reportSoFar(client, id) + ", stderr: "
                    + client.stderr().trim().replaceAll("(?s).*\\n", ""));
            throw e;
        }
        assertThat(reportSoFar(client, id)).as("what the peer read after its unwrap(); pipeline at the event: %s",
                names).containsEntry("plain-from-peer", "PLAIN-FROM-NETTY " + id);
        ours.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    @ParameterizedTest(name = "FIN {0}, {1}")
    @MethodSource("finsAndCells")
    void clientFinWithoutCloseNotifyIsTruncated(Fin fin, Cell cell) throws Exception {
        OurServer server = serverWith(cell, PeerClosePolicy.CLOSE);
        String id = newId();
        PeerProcess client = pythonClient(fin.scenario(), cell, server.port(), fin.cutAt(), id);
        Endpoint ours = server.awaitAccepted();

        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(cause.isInsideRecord()).as("%s", cause).isEqualTo(fin.insideRecord());
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(fin.cutAt());
        ours.assertClosedWithOneEvent();
        assertBytes(ours.rec.receivedBytes(), ascii("HELLO " + id + "\n"), "the data before the FIN");
        assertThat(report(client, id)).containsEntry("peer-end", "close_notify");
    }
}
