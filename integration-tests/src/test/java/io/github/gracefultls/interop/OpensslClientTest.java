package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
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
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code openssl s_client} (OpenSSL 3.0) against our server, one process per cell. Without {@code -ign_eof} it sends
 * close_notify on stdin EOF and closes at once; with {@code -quiet} (which implies {@code -ign_eof}) it ignores stdin
 * EOF, and killed it leaves a bare FIN: the truncation that {@code gnutls_bye(SHUT_RDWR)} would call a success.
 */
class OpensslClientTest extends InteropTest {

    private static final String REQUEST = "hello from s_client\n";
    private static final Duration EXIT = Duration.ofSeconds(30);
    /** How a process killed by SIGTERM exits, as Java reports it. */
    private static final int KILLED_BY_SIGTERM = 128 + 15;

    private PeerProcess sClient(int port, String... options) {
        String bin = Peers.require(Peers.Program.OPENSSL).toString();
        List<String> command = new ArrayList<>(List.of(bin, "s_client", "-connect", "127.0.0.1:" + port,
                "-CAfile", pem.caCertificate().toString(), "-servername", TestHost.NAME, "-verify_return_error"));
        command.addAll(List.of(options));
        return perTest(PeerProcess.start("openssl-s_client", command, workDirectory));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void stdinEofSendsCloseNotifyWeReplyAndClose(Cell cell) throws Exception {
        OurServer server = perTest(OurServer.start(loops, cell, GracefulTlsCloseHandler::new, List::of));
        PeerProcess client = sClient(server.port());
        client.writeStdin(REQUEST);
        client.closeStdin();

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent();
        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.assertClosedWithOneEvent();
        assertBytes(ours.rec.receivedBytes(), REQUEST.getBytes(StandardCharsets.US_ASCII), "the request");
        int exit = client.awaitExit(EXIT);
        InteropReport.observe("s_client exit " + exit);
        assertThat(exit).as("s_client exit status; stderr: %s", client.stderr()).isZero();
        assertThat(client.stderr()).contains("DONE");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void killedClientIsTruncatedNeverClean(Cell cell) throws Exception {
        OurServer server = perTest(OurServer.start(loops, cell, GracefulTlsCloseHandler::new, List::of));
        PeerProcess client = sClient(server.port(), "-quiet");
        client.writeStdin(REQUEST);
        Endpoint ours = server.awaitAccepted();
        ours.rec.awaitBytes(REQUEST.length(), AWAIT);

        client.terminate(); // SIGTERM by PID: the kernel closes its socket with a FIN, no close_notify

        TlsCloseEvent event = ours.awaitEvent();
        InteropReport.observe(describe(event));
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.PEER);
        assertThat(event.mode()).isNull();
        assertThat(cause.isInsideRecord()).as("%s", cause).isFalse();
        ours.assertClosedWithOneEvent();
        assertThat(client.awaitExit(EXIT)).isEqualTo(KILLED_BY_SIGTERM);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#nio")
    void ourCloseIsAnsweredWithCloseNotify(Cell cell) throws Exception {
        OurServer server = perTest(OurServer.start(loops, cell,
                () -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build(),
                () -> List.<ChannelHandler>of(new Apps.RespondToLineThenClose(
                        "bye from netty\n".getBytes(StandardCharsets.US_ASCII), false))));
        PeerProcess client = sClient(server.port(), "-ign_eof");
        client.writeStdin(REQUEST);

        Endpoint ours = server.awaitAccepted();
        TlsCloseEvent event = ours.awaitEvent(LONG_TIMEOUT.plus(AWAIT));
        InteropReport.observe(describe(event));
        ours.assertClosedWithOneEvent();
        int exit = client.awaitExit(EXIT);
        InteropReport.observe("s_client exit " + exit);
        assertThat(client.stdout()).contains("bye from netty");
        assertThat(exit).isZero();
        // s_client answers our close_notify with its own (SSL_shutdown) before it closes.
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).isLessThan(withinOneRoundTrip(ours));
    }
}
