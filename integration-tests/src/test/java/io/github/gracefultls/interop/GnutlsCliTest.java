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
import io.netty.channel.ChannelHandler;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code gnutls-cli} (GnuTLS 3.7) against our server, one process per cell. On stdin EOF gnutls-cli calls
 * {@code gnutls_bye(GNUTLS_SHUT_WR)}: it sends close_notify and keeps reading, about 2 s, for our data and our
 * close_notify. It prints what it receives, then "- Peer has closed the GnuTLS connection" when our close_notify
 * arrives.
 */
class GnutlsCliTest extends InteropTest {

    private static final String REQUEST = "request from gnutls-cli\n";
    private static final String RESPONSE = "RESPONSE after your close_notify\n";
    private static final String PEER_CLOSED = "- Peer has closed the GnuTLS connection";
    /** gnutls-cli waits about 2 s for our close_notify; bound for it to exit. */
    private static final Duration EXIT = Duration.ofSeconds(30);

    private PeerProcess gnutlsCli(int port) {
        String bin = Peers.require(Peers.Program.GNUTLS_CLI).toString();
        return perTest(PeerProcess.start("gnutls-cli", List.of(bin, "--x509cafile", pem.caCertificate().toString(),
                "--port", String.valueOf(port), TestHost.NAME), workDirectory));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void halfClosePolicyAnswersAfterPeerCloseNotify(Cell cell) throws Exception {
        Apps.RespondAfterPeerClose app = new Apps.RespondAfterPeerClose(RESPONSE);
        OurServer server = perTest(OurServer.start(loops, cell,
                () -> GracefulTlsCloseHandler.builder().peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build(),
                () -> List.<ChannelHandler>of(app)));
        PeerProcess cli = gnutlsCli(server.port());
        cli.writeStdin(REQUEST);
        cli.closeStdin(); // gnutls_bye(SHUT_WR)

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();
        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        assertThat(event.elapsed()).isZero();
        Throwable writeFailure = app.writeOutcome.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        ours.assertClosedWithOneEvent();
        assertBytes(ours.rec.receivedBytes(), REQUEST.getBytes(StandardCharsets.US_ASCII), "the request");

        int exit = cli.awaitExit(EXIT);
        String stdout = cli.stdout();
        InteropReport.observe("gnutls-cli exit " + exit + (stdout.contains(RESPONSE) ? ", got our response" : "")
                + (stdout.contains(PEER_CLOSED) ? ", got our close_notify" : ""));
        assertThat(exit).as("gnutls-cli exit status; stderr: %s", cli.stderr()).isZero();
        assertThat(stdout).as("gnutls-cli saw our close_notify").contains(PEER_CLOSED);
        if (cell.canWriteAfterPeerCloseNotify()) {
            // JDK TLS 1.3: a true half-close. The response written after the peer's close_notify reaches it.
            assertThat(writeFailure).as("our write after the peer's close_notify").isNull();
            assertThat(stdout).contains(RESPONSE);
            assertThat(stdout.indexOf(RESPONSE)).isLessThan(stdout.indexOf(PEER_CLOSED));
        } else {
            // The engine replied close_notify by itself: our output is closed, the write fails and is released.
            assertThat(writeFailure).as("our write after the engine's own close_notify").isNotNull();
            InteropReport.observe("write failed: " + writeFailure.getClass().getSimpleName());
            assertThat(stdout).doesNotContain(RESPONSE);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void closePolicyRepliesCloseNotifyAndCloses(Cell cell) throws Exception {
        OurServer server = perTest(OurServer.start(loops, cell, GracefulTlsCloseHandler::new, List::of));
        PeerProcess cli = gnutlsCli(server.port());
        cli.writeStdin(REQUEST);
        cli.closeStdin();

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();
        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertClosedWithOneEvent();
        assertBytes(ours.rec.receivedBytes(), REQUEST.getBytes(StandardCharsets.US_ASCII), "the request");

        long start = System.nanoTime();
        int exit = cli.awaitExit(EXIT);
        long waitedMillis = (System.nanoTime() - start) / 1_000_000L;
        InteropReport.observe("gnutls-cli exit " + exit + " " + waitedMillis + " ms after our close");
        assertThat(exit).as("gnutls-cli exit status; stderr: %s", cli.stderr()).isZero();
        assertThat(cli.stdout()).as("gnutls-cli saw our close_notify").contains(PEER_CLOSED);
        assertThat(Duration.ofMillis(waitedMillis)).as("it did not wait ~2 s for a close_notify we never sent")
                .isLessThan(ours.lateness.allow(Duration.ofMillis(1500)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourCloseIsAnsweredByFinWithoutCloseNotify(Cell cell) throws Exception {
        OurServer server = perTest(OurServer.start(loops, cell,
                () -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build(),
                () -> List.<ChannelHandler>of(new Apps.RespondToLineThenClose(
                        RESPONSE.getBytes(StandardCharsets.US_ASCII), false))));
        PeerProcess cli = gnutlsCli(server.port()); // stdin stays open: gnutls-cli does not begin the closure
        cli.writeStdin(REQUEST);

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent(LONG_TIMEOUT.plus(AWAIT));
        InteropReport.observe(describe(event));
        ours.assertClosedWithOneEvent();
        int exit = cli.awaitExit(EXIT);
        String stdout = cli.stdout();
        InteropReport.observe("gnutls-cli exit " + exit + (stdout.contains(PEER_CLOSED) ? ", got our close_notify" : ""));
        assertThat(stdout).contains(RESPONSE).contains(PEER_CLOSED);
        assertThat(exit).isZero();
        // Finding: gnutls-cli does not answer a close_notify it did not ask for; it closes TCP. We say so.
        assertTruncated(event, TlsCloseInitiator.LOCAL);
        assertThat(event.mode()).isEqualTo(TlsCloseMode.SHUT_RDWR);
        assertThat(((TlsTruncationException) event.cause()).isInsideRecord()).isFalse();
        assertThat(event.elapsed()).isLessThan(withinOneRoundTrip(ours));
    }
}
