package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.interop.JdkSocketPeer.End;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.TlsRecords;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The JDK's blocking {@code javax.net.ssl.SSLSocket} ({@link JdkSocketPeer}), in-process over loopback, as client and
 * as server, against our handler on both providers and both protocols. The peer's own verdict on our close_notify is
 * how its blocking read ends: {@code -1}. Finding: by default the JDK returns {@code -1} after a bare FIN as well
 * ({@code com.sun.net.ssl.requireCloseNotify} is off), so it cannot tell our truncation; our side can. With that
 * property on (a JVM of its own) it throws {@code SSLProtocolException}. On TLS 1.3
 * {@code SSLSocket.close()} sends a {@code user_canceled} warning before its close_notify (unless its input was already
 * closed): both engines of ours take that closure as clean.
 */
class JdkSslSocketTest extends InteropTest {

    private static final byte[] REQUEST = "hello from SSLSocket\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] RESPONSE = "bye from netty\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] GREETING = "hello from SSLServerSocket\n".getBytes(StandardCharsets.US_ASCII);

    private static void write(JdkSocketPeer.Client client, byte[] bytes) throws Exception {
        OutputStream out = client.tls.getOutputStream();
        out.write(bytes);
        out.flush();
    }

    private OurServer server(Cell cell, Apps.Then then) throws Exception {
        return perTest(OurServer.start(loops, cell,
                () -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build(),
                () -> then == null ? List.of()
                        : List.<ChannelHandler>of(new Apps.RespondToLineThenClose("\n", RESPONSE, then))));
    }

    /**
     * Our own close below TLS: the handler sees the channel go inactive without the peer's close_notify. It reports
     * that as a truncation, with initiator PEER (no closure of ours was under way). Where in the peer's stream it
     * fell depends on what was in flight (a JDK TLS 1.3 server's NewSessionTicket may be half read), so the cause's
     * record position is not asserted.
     */
    private static void assertOwnTruncation(TlsCloseEvent event) {
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(event.mode()).isNull();
        assertThat(cause.getMessage()).startsWith("the channel became inactive before the peer's close_notify, ");
    }

    private static void observe(TlsCloseEvent event, End end) {
        InteropReport.observe(describe(event));
        InteropReport.observe("SSLSocket read " + end);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our server, SSLSocket client
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourCloseEndsTheSocketsStream(Cell cell) throws Exception {
        OurServer server = server(cell, Apps.Then.CLOSE);
        JdkSocketPeer.Client client = perTest(JdkSocketPeer.Client.connect(server.port(), cell.protocol()));
        write(client, REQUEST);

        End end = JdkSocketPeer.readToEnd(client.tls);
        client.tls.close(); // our wait ends here where the JDK did not answer by itself
        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();

        observe(event, end);
        assertThat(end.isEndOfStream()).as("the SSLSocket's verdict: %s", end.verdict()).isTrue();
        assertBytes(end.bytes(), RESPONSE, "what the SSLSocket read");
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        ours.assertClosedWithOneEvent();
    }

    /** {@code SSLSocket.close()}: on TLS 1.3 the JDK sends a {@code user_canceled} warning, then close_notify. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void socketCloseIsACleanPeerClosure(Cell cell) throws Exception {
        OurServer server = server(cell, null);
        JdkSocketPeer.Client client = perTest(JdkSocketPeer.Client.connect(server.port(), cell.protocol()));
        Endpoint ours = server.awaitAccepted();
        write(client, REQUEST);
        ours.rec.awaitBytes(REQUEST.length, AWAIT);

        client.tls.close();
        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertClosedWithOneEvent();
        assertBytes(ours.rec.receivedBytes(), REQUEST, "the request");
        // What the SSLSocket sent after the request: on TLS 1.3 two alerts, user_canceled then close_notify (each an
        // encrypted record of 2 + 1 + 16 + 16 bytes: the alert, its inner type, the JDK's padding, the tag); on
        // TLS 1.2 one alert record.
        ByteArrayOutputStream raw = new ByteArrayOutputStream();
        ours.tap.reads().forEach(raw::writeBytes);
        List<TlsRecords.Record> records = TlsRecords.parse(raw.toByteArray());
        // The request's record: at least its plaintext and a 24-byte GCM overhead; each alert record is shorter.
        TlsRecords.Record request = records.stream().filter(r -> r.isApplicationData()
                && r.length() >= REQUEST.length + 24).reduce((a, b) -> b).orElseThrow();
        List<TlsRecords.Record> closing = records.subList(records.indexOf(request) + 1, records.size());
        InteropReport.observe("SSLSocket.close() sent " + closing);
        if (cell.isTls13()) {
            assertThat(closing).as("user_canceled, close_notify").hasSize(2)
                    .allSatisfy(r -> assertThat(r.length()).isEqualTo(2 + 1 + 16 + 16));
        } else {
            assertThat(closing).as("close_notify").hasSize(1).allSatisfy(r -> assertThat(r.isAlert()).isTrue());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void socketShutdownOutputIsAnsweredWithOurCloseNotify(Cell cell) throws Exception {
        OurServer server = server(cell, null);
        JdkSocketPeer.Client client = perTest(JdkSocketPeer.Client.connect(server.port(), cell.protocol()));
        Endpoint ours = server.awaitAccepted();
        write(client, REQUEST);
        ours.rec.awaitBytes(REQUEST.length, AWAIT);

        client.tls.shutdownOutput();
        End end = JdkSocketPeer.readToEnd(client.tls);
        TlsCloseEvent event = ours.awaitEvent();

        observe(event, end);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertClosedWithOneEvent();
        assertThat(end.isEndOfStream()).as("the SSLSocket's verdict: %s", end.verdict()).isTrue();
    }

    /**
     * We cut the connection below TLS after the response. The JDK's SSLSocket takes the bare FIN for a close_notify
     * ({@code SSLSocketImpl.handleEOF}): its read returns -1, exactly as after a clean closure. Only
     * {@code -Dcom.sun.net.ssl.requireCloseNotify=true}, read once per JVM, makes it throw. Our side reports it.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourTruncationLooksLikeAnEndOfStreamToTheSocket(Cell cell) throws Exception {
        OurServer server = server(cell, Apps.Then.TRUNCATE);
        JdkSocketPeer.Client client = perTest(JdkSocketPeer.Client.connect(server.port(), cell.protocol()));
        write(client, REQUEST);

        End end = JdkSocketPeer.readToEnd(client.tls);
        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();

        observe(event, end);
        assertBytes(end.bytes(), RESPONSE, "what the SSLSocket read before the FIN");
        // If this starts failing, the JDK began to report the truncation: update docs/interop.md.
        assertThat(end.isEndOfStream()).as("the SSLSocket's verdict: %s", end.verdict()).isTrue();
        assertOwnTruncation(event);
        ours.assertClosedWithOneEvent();
    }

    /**
     * The same truncation against an SSLSocket in a JVM of its own with {@code com.sun.net.ssl.requireCloseNotify}
     * on: now the JDK tells it, while our clean close still ends its stream with -1.
     */
    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("closesAndCells")
    void withRequireCloseNotifyTheSocketTellsATruncation(Apps.Then then, Cell cell) throws Exception {
        OurServer server = server(cell, then);
        PeerProcess client = perTest(PeerProcess.start("jdk-sslsocket-strict", JdkSocketPeer.childJvm(
                "com.sun.net.ssl.requireCloseNotify=true", server.port(), cell.protocol(), "hello",
                pem.caCertificate()),
                workDirectory));
        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();
        int exit = client.awaitExit(AWAIT);

        InteropReport.observe(describe(event));
        InteropReport.observe("SSLSocket (requireCloseNotify): " + client.stdout().trim().replace('\n', ' '));
        assertThat(exit).as("the child JVM's exit; stderr: %s", client.stderr()).isZero();
        assertThat(client.stdout()).contains("bytes=" + RESPONSE.length);
        ours.assertClosedWithOneEvent();
        if (then == Apps.Then.CLOSE) {
            assertThat(client.stdout()).contains("end=end of stream (-1)");
            assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL,
                    TlsCloseMode.SHUT_RDWR);
        } else {
            assertThat(client.stdout()).contains(
                    "end=javax.net.ssl.SSLProtocolException: Remote host terminated the connection");
            assertOwnTruncation(event);
        }
    }

    static Stream<Arguments> closesAndCells() {
        return Stream.of(Apps.Then.CLOSE, Apps.Then.TRUNCATE)
                .flatMap(then -> Cell.nio().map(cell -> Arguments.of(then, cell)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void plainSocketClosedBelowTlsIsTruncated(Cell cell) throws Exception {
        OurServer server = server(cell, null);
        JdkSocketPeer.Client client = perTest(JdkSocketPeer.Client.connect(server.port(), cell.protocol()));
        Endpoint ours = server.awaitAccepted();
        write(client, REQUEST);
        ours.rec.awaitBytes(REQUEST.length, AWAIT);

        client.closeBelowTls();
        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(event.mode()).isNull();
        assertThat(cause.isInsideRecord()).as("%s", cause).isFalse();
        assertThat(cause.getMessage()).contains("at a TLS record boundary");
        ours.assertClosedWithOneEvent();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our client, SSLServerSocket server
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourCloseEndsTheServerSocketsStream(Cell cell) throws Exception {
        JdkSocketPeer.Server peer = perTest(JdkSocketPeer.Server.start(cell.protocol(), JdkSocketPeer::readToEnd));
        Endpoint ours = perTest(Endpoint.connect(loops, cell, peer.port(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build()));
        ours.channel.writeAndFlush(Unpooled.wrappedBuffer(REQUEST));

        ours.channel.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        TlsCloseEvent event = ours.awaitEvent();
        End end = peer.await();

        observe(event, end);
        assertThat(end.isEndOfStream()).as("the SSLServerSocket's verdict: %s", end.verdict()).isTrue();
        assertBytes(end.bytes(), REQUEST, "what the SSLServerSocket read");
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        ours.assertClosedWithOneEvent();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourShutdownOutputEndsTheServerSocketsStream(Cell cell) throws Exception {
        JdkSocketPeer.Server peer = perTest(JdkSocketPeer.Server.start(cell.protocol(), JdkSocketPeer::readToEnd));
        Endpoint ours = perTest(Endpoint.connect(loops, cell, peer.port(),
                GracefulTlsCloseHandler.builder().halfCloseTimeout(LONG_TIMEOUT).build()));
        ours.channel.writeAndFlush(Unpooled.wrappedBuffer(REQUEST));

        TlsCloseEvent event = ours.await(ours.handler.shutdownOutput());
        End end = peer.await();

        observe(event, end);
        assertThat(end.isEndOfStream()).as("the SSLServerSocket's verdict: %s", end.verdict()).isTrue();
        assertBytes(end.bytes(), REQUEST, "what the SSLServerSocket read");
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
        ours.assertClosedWithOneEvent();
    }

    /** {@code SSLSocket.close()} on the server: on TLS 1.3 a {@code user_canceled} warning, then close_notify. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void serverSocketCloseIsACleanPeerClosure(Cell cell) throws Exception {
        JdkSocketPeer.Server peer = perTest(JdkSocketPeer.Server.start(cell.protocol(), s -> {
            s.getOutputStream().write(GREETING);
            s.getOutputStream().flush();
            return new End(new byte[0], null); // then closed by the server's thread
        }));
        Endpoint ours = perTest(Endpoint.connect(loops, cell, peer.port(), new GracefulTlsCloseHandler()));

        TlsCloseEvent event = ours.awaitEvent();
        peer.await();

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertClosedWithOneEvent();
        assertBytes(ours.rec.receivedBytes(), GREETING, "the greeting");
    }

    /** As {@link #ourTruncationLooksLikeAnEndOfStreamToTheSocket}, the other way round. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourTruncationLooksLikeAnEndOfStreamToTheServerSocket(Cell cell) throws Exception {
        JdkSocketPeer.Server peer = perTest(JdkSocketPeer.Server.start(cell.protocol(), JdkSocketPeer::readToEnd));
        Endpoint ours = perTest(Endpoint.connect(loops, cell, peer.port(), new GracefulTlsCloseHandler()));
        ours.channel.writeAndFlush(Unpooled.wrappedBuffer(REQUEST)).get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);

        ours.channel.eventLoop().submit(() -> ours.channel.pipeline().firstContext().close())
                .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS); // below TLS: a FIN without close_notify
        TlsCloseEvent event = ours.awaitEvent();
        End end = peer.await();

        observe(event, end);
        assertBytes(end.bytes(), REQUEST, "what the SSLServerSocket read before the FIN");
        assertThat(end.isEndOfStream()).as("the SSLServerSocket's verdict: %s", end.verdict()).isTrue();
        assertOwnTruncation(event);
        ours.assertClosedWithOneEvent();
    }
}
