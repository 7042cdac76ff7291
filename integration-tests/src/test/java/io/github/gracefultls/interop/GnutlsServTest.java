package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Our client against {@code gnutls-serv --echo} (GnuTLS 3.7), one server process for all cells. Each cell exchanges a
 * line, writes a last line and at once begins its closure. gnutls-serv answers our close_notify with its own at once.
 * Its echo is line oriented: whether the last line comes back depends on whether it read the line and our
 * close_notify together; the cells accept both and report which.
 */
class GnutlsServTest extends InteropTest {

    private static final byte[] FIRST = "hello gnutls\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] LAST = "last line before close_notify\n".getBytes(StandardCharsets.US_ASCII);

    private PeerProcess gnutlsServ() {
        return shared("gnutls-serv", () -> {
            String bin = Peers.require(Peers.Program.GNUTLS_SERV).toString();
            String key = sec1Key.toString(); // GnuTLS 3.7 cannot read the PKCS#8 form: see GnutlsKeys
            return PeerProcess.startListening("gnutls-serv", port -> List.of(bin, "--echo", "--quiet", "--port",
                    String.valueOf(port), "--x509certfile", pem.certificate().toString(), "--x509keyfile", key,
                    "--disable-client-cert"), workDirectory, LISTEN);
        });
    }

    /** Connects, exchanges the first line, and writes the last one without waiting. */
    private Endpoint connectAndExchange(Cell cell) throws Exception {
        PeerProcess server = gnutlsServ();
        Endpoint client = perTest(Endpoint.connect(loops, cell, server.port(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build()));
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(FIRST));
        client.rec.awaitBytes(FIRST.length, AWAIT);
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(LAST));
        return client;
    }

    /** The first line's echo, and the last line's either delivered or (SHUT_RDWR) discarded, or not echoed. */
    private static void assertEcho(Endpoint client, TlsCloseEvent event) {
        byte[] received = client.rec.receivedBytes();
        boolean lastDelivered = received.length > FIRST.length;
        byte[] expected = lastDelivered ? concat(FIRST, LAST) : FIRST;
        assertBytes(received, expected, "the echo");
        assertThat(event.discardedBytes()).isIn(0L, (long) LAST.length);
        assertThat(lastDelivered && event.discardedBytes() > 0).isFalse();
        InteropReport.observe("echo of the line sent right before close_notify: "
                + (lastDelivered ? "delivered" : event.discardedBytes() > 0 ? "discarded" : "not echoed"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void closeGetsCloseNotifyWithinOneRoundTrip(Cell cell) throws Exception {
        Endpoint client = connectAndExchange(cell);

        ChannelFuture closed = client.channel.close();

        assertThat(closed.await(AWAIT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
        assertThat(closed.isSuccess()).isTrue();
        TlsCloseEvent event = client.awaitEvent();
        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).as("well under the %s read timeout", LONG_TIMEOUT)
                .isLessThan(withinOneRoundTrip(client));
        assertEcho(client, event);
        client.assertClosedWithOneEvent();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void byeShutRdwrHandsBackTheTransport(Cell cell) throws Exception {
        Endpoint client = connectAndExchange(cell);

        TlsCloseEvent event = client.await(client.handler.bye(TlsCloseMode.SHUT_RDWR));

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).isLessThan(withinOneRoundTrip(client));
        client.assertHandedBackAsPlaintext();
        // gnutls-serv ends the connection after its close_notify: a FIN on the plaintext transport, nothing else.
        client.rec.awaitEvent(ChannelInputShutdownEvent.class, AWAIT);
        InteropReport.observe("then gnutls-serv sent FIN, no plaintext");
        assertEcho(client, event);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void byeShutWrHandsBackTheTransport(Cell cell) throws Exception {
        Endpoint client = connectAndExchange(cell);

        TlsCloseEvent event = client.await(client.handler.bye(TlsCloseMode.SHUT_WR));

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
        assertThat(event.elapsed()).isLessThan(withinOneRoundTrip(client));
        assertThat(event.discardedBytes()).as("SHUT_WR delivers, never discards").isZero();
        client.assertHandedBackAsPlaintext();
        assertEcho(client, event);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void shutdownOutputSendsCloseNotifyAndFinThenCloses(Cell cell) throws Exception {
        Endpoint client = connectAndExchange(cell);

        TlsCloseEvent event = client.await(client.handler.shutdownOutput());

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
        assertThat(event.elapsed()).isLessThan(withinOneRoundTrip(client));
        assertThat(event.discardedBytes()).isZero();
        client.assertClosedWithOneEvent();
        assertEcho(client, event);
    }

    /**
     * shutdownOutput() again and again: every closure must conclude. gnutls-serv answers with close_notify and FIN
     * together; when the transport delivers the FIN before the read-complete that would verify the close_notify
     * (seen with io_uring), the closure must still conclude as CLOSE_NOTIFY_RECEIVED.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void shutdownOutputConcludesEveryTime(Cell cell) throws Exception {
        int rounds = 50;
        for (int i = 0; i < rounds; i++) {
            try (Endpoint client = connectAndExchange(cell)) {
                TlsCloseEvent event = client.await(client.handler.shutdownOutput());
                assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
                client.assertClosedWithOneEvent();
            } catch (AssertionError e) {
                InteropReport.observe("round " + (i + 1) + " of " + rounds + " did not conclude");
                throw e;
            }
        }
        InteropReport.observe(rounds + " rounds, all concluded clean");
    }
}
