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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Our client against {@code openssl s_server -rev} (OpenSSL 3.0), one server process for all cells: it sends each line
 * back reversed, and answers our close_notify with its own at once.
 */
class OpensslServerTest extends InteropTest {

    private static final String LINE = "hello openssl";
    private static final byte[] LINE_BYTES = (LINE + "\n").getBytes(StandardCharsets.US_ASCII);
    private static final byte[] REVERSED = (new StringBuilder(LINE).reverse() + "\n")
            .getBytes(StandardCharsets.US_ASCII);

    private PeerProcess sServer() {
        return shared("s_server", () -> {
            String bin = Peers.require(Peers.Program.OPENSSL).toString();
            return PeerProcess.startListening("openssl-s_server", port -> List.of(bin, "s_server", "-rev",
                    "-accept", "127.0.0.1:" + port, "-cert", pem.certificate().toString(), "-key",
                    pem.privateKey().toString()), workDirectory, LISTEN);
        });
    }

    private Endpoint connectAndExchange(Cell cell) throws Exception {
        PeerProcess server = sServer();
        Endpoint client = perTest(Endpoint.connect(loops, cell, server.port(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build()));
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(LINE_BYTES));
        client.rec.awaitBytes(REVERSED.length, AWAIT);
        assertBytes(client.rec.receivedBytes(), REVERSED, "the reversed line");
        return client;
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
        assertThat(event.discardedBytes()).isZero();
        client.assertClosedWithOneEvent();
        assertBytes(client.rec.receivedBytes(), REVERSED, "what we received");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void shutdownOutputSendsCloseNotifyAndFinThenCloses(Cell cell) throws Exception {
        Endpoint client = connectAndExchange(cell);

        TlsCloseEvent event = client.await(client.handler.shutdownOutput());

        InteropReport.observe(describe(event));
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
        assertThat(event.elapsed()).isLessThan(withinOneRoundTrip(client));
        client.assertClosedWithOneEvent();
        assertBytes(client.rec.receivedBytes(), REVERSED, "what we received");
    }
}
