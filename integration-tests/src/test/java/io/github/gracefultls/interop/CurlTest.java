package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.netty.channel.ChannelHandler;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * curl (7.88, OpenSSL 3.0) against our server, one process per cell. The response is HTTP/1.1 without
 * Content-Length, so only the end of the connection tells curl where the body ends: a graceful close() gives it every
 * byte and exit 0. Finding: a close below the TLS layer (a FIN without close_notify) in the middle of the body is
 * <em>not</em> an error for curl 7.88.1: it exits 0 with half the body. It cannot tell the truncation; our side can.
 */
class CurlTest extends InteropTest {

    private static final int BODY_SIZE = 1024 * 1024;
    private static final byte[] BODY = body();
    private static final String HEAD = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            + "Connection: close\r\n\r\n";
    private static final Duration EXIT = Duration.ofSeconds(30);

    private static byte[] body() {
        byte[] body = new byte[BODY_SIZE];
        new Random(20261125).nextBytes(body);
        return body;
    }

    private static byte[] response(String head, byte[] body) {
        byte[] h = head.getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[h.length + body.length];
        System.arraycopy(h, 0, out, 0, h.length);
        System.arraycopy(body, 0, out, h.length, body.length);
        return out;
    }

    private PeerProcess curl(Cell cell, int port, Path output) {
        String bin = Peers.require(Peers.Program.CURL).toString();
        String version = cell.isTls13() ? "1.3" : "1.2";
        return perTest(PeerProcess.start("curl", List.of(bin, "--silent", "--show-error", "--http1.1",
                "--tlsv" + version, "--tls-max", version, "--cacert", pem.caCertificate().toString(),
                "--resolve", TestHost.NAME + ":" + port + ":127.0.0.1", "--max-time", "15",
                "--output", output.toString(), "--write-out", "%{http_code} %{size_download}",
                "https://" + TestHost.NAME + ":" + port + "/"), workDirectory));
    }

    private OurServer server(Cell cell, byte[] response, Apps.Then then) throws Exception {
        return perTest(OurServer.start(loops, cell,
                () -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build(),
                () -> List.<ChannelHandler>of(new Apps.RespondToLineThenClose("\r\n\r\n", response, then))));
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void gracefulCloseDelimitsTheBody(Cell cell) throws Exception {
        OurServer server = server(cell, response(HEAD, BODY), Apps.Then.CLOSE);
        Path output = workDirectory.resolve("curl-" + System.nanoTime() + ".bin");
        PeerProcess curl = curl(cell, server.port(), output);

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent(LONG_TIMEOUT.plus(AWAIT));
        int exit = curl.awaitExit(EXIT);

        InteropReport.observe(describe(event));
        InteropReport.observe("curl exit " + exit + ", " + curl.stdout() + " " + curl.stderr().trim());
        assertThat(exit).as("curl exit status; stderr: %s", curl.stderr()).isZero();
        assertThat(curl.stdout()).isEqualTo("200 " + BODY_SIZE);
        byte[] received = Files.readAllBytes(output);
        assertThat(received.length).isEqualTo(BODY_SIZE);
        assertThat(sha256(received)).as("SHA-256 of the body curl saved").isEqualTo(sha256(BODY));
        ours.assertClosedWithOneEvent();
        // curl answers our close_notify with its own.
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).isLessThan(withinOneRoundTrip(ours));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void truncationWithoutCloseNotifyGoesUnnoticedByCurl(Cell cell) throws Exception {
        byte[] half = Arrays.copyOf(BODY, BODY_SIZE / 2);
        OurServer server = server(cell, response(HEAD, half), Apps.Then.TRUNCATE); // then a FIN, no close_notify
        Path output = workDirectory.resolve("curl-" + System.nanoTime() + ".bin");
        PeerProcess curl = curl(cell, server.port(), output);

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();
        int exit = curl.awaitExit(EXIT);

        InteropReport.observe(describe(event));
        long saved = Files.exists(output) ? Files.size(output) : 0;
        InteropReport.observe("curl exit " + exit + " (" + curl.stderr().trim() + "), saved " + saved + " of "
                + BODY_SIZE + " bytes");
        assertThat(event.isClean()).as("our own truncation is not clean: %s", event).isFalse();
        ours.assertClosedWithOneEvent();
        // What curl 7.88.1 really does: it takes the FIN as the end of the body. If this starts failing, curl began
        // to detect the truncation: update the matrix in docs/interop.md.
        assertThat(exit).as("curl's exit status for a body cut without close_notify; stderr: %s", curl.stderr())
                .isZero();
        assertThat(saved).as("curl kept the truncated body as if complete").isEqualTo(half.length);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void curlEndsAKeepAliveConnection(Cell cell) throws Exception {
        byte[] small = "hello curl\n".getBytes(StandardCharsets.US_ASCII);
        String head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + small.length + "\r\n\r\n";
        OurServer server = server(cell, response(head, small), Apps.Then.NOTHING);
        Path output = workDirectory.resolve("curl-" + System.nanoTime() + ".bin");
        PeerProcess curl = curl(cell, server.port(), output);

        Endpoint ours = server.awaitAccepted();
        int exit = curl.awaitExit(EXIT);
        TlsCloseEvent event = ours.awaitEvent();

        InteropReport.observe(describe(event));
        InteropReport.observe("curl exit " + exit);
        assertThat(exit).isZero();
        assertThat(Files.readAllBytes(output)).isEqualTo(small);
        ours.assertClosedWithOneEvent();
        // curl ends its connection with a close_notify: the peer begins, cleanly.
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
    }
}
