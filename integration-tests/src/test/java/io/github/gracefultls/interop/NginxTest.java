package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.testing.FreePorts;
import io.github.gracefultls.testing.Nginx;
import io.github.gracefultls.testing.PeerProcess;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Our client against nginx (1.22, OpenSSL 3.0) as the upstream, one nginx for all cells: a minimal configuration in
 * a temporary directory, no daemon, no master process, one TLS server per protocol ({@code ssl_protocols}) on free
 * loopback ports, never port 80. Finding: nginx sends close_notify when it ends a connection itself
 * ({@code Connection: close}), but answers a client's close_notify on a keep-alive connection with a bare FIN.
 */
class NginxTest extends InteropTest {

    private static final String BODY = "hello from nginx\n";
    private static final String REQUEST = "GET / HTTP/1.1\r\nHost: " + TestHost.NAME + "\r\n\r\n";
    private static final String REQUEST_CLOSE = "GET / HTTP/1.1\r\nHost: " + TestHost.NAME
            + "\r\nConnection: close\r\n\r\n";

    private int tls12Port;
    private int tls13Port;

    private PeerProcess nginx() {
        return shared("nginx", () -> {
            Path dir = workDirectory.resolve("nginx");
            PeerProcess nginx = Nginx.start(dir, "", port -> {
                tls12Port = port;
                tls13Port = FreePorts.freePort();
                return "http {\n"
                        + "  access_log " + dir.resolve("access.log") + ";\n"
                        + Nginx.httpTempPaths(dir)
                        + server(tls12Port, "TLSv1.2")
                        + server(tls13Port, "TLSv1.3")
                        + "}\n";
            }, LISTEN);
            try {
                nginx.awaitListening(tls13Port, LISTEN);
            } catch (AssertionError e) {
                nginx.close();
                throw e;
            }
            return nginx;
        });
    }

    private String server(int port, String protocol) {
        return "  server {\n"
                + "    listen 127.0.0.1:" + port + " ssl;\n"
                + "    ssl_certificate " + pem.certificateChain() + ";\n"
                + "    ssl_certificate_key " + pem.privateKey() + ";\n"
                + "    ssl_protocols " + protocol + ";\n"
                + "    location / { return 200 \"" + BODY.replace("\n", "\\n") + "\"; }\n"
                + "  }\n";
    }

    private Endpoint connect(Cell cell) throws Exception {
        nginx();
        int port = cell.isTls13() ? tls13Port : tls12Port;
        return perTest(Endpoint.connect(loops, cell, port,
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build()));
    }

    /** Sends a request and waits for the whole response (its body ends it: nginx sends Content-Length). */
    private static String exchange(Endpoint client, String request) throws Exception {
        client.channel.writeAndFlush(Unpooled.copiedBuffer(request, StandardCharsets.US_ASCII));
        client.rec.awaitCondition(r -> r.receivedString().endsWith(BODY), AWAIT, "the response of nginx");
        String response = client.rec.receivedString();
        assertThat(response).startsWith("HTTP/1.1 200 OK").contains("Content-Length: " + BODY.length());
        return response;
    }

    private static void assertTruncatedAtRecordBoundary(Endpoint client, TlsCloseEvent event, TlsCloseMode mode) {
        TlsTruncationException cause = assertTruncated(event, TlsCloseInitiator.LOCAL);
        assertThat(event.mode()).isEqualTo(mode);
        assertThat(cause.isInsideRecord()).as("%s", cause).isFalse();
        assertThat(event.elapsed()).as("nginx closes at once").isLessThan(withinOneRoundTrip(client));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void closeOnAKeepAliveConnectionIsAnsweredByFinWithoutCloseNotify(Cell cell) throws Exception {
        Endpoint client = connect(cell);
        exchange(client, REQUEST);

        ChannelFuture closed = client.channel.close();

        assertThat(closed.await(AWAIT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
        TlsCloseEvent event = client.awaitEvent();
        InteropReport.observe(describe(event));
        // Finding: nginx does not answer a client's close_notify on a keep-alive connection; it closes TCP at once
        // (after SSL_read returns 0 it sets no_send_shutdown). We report what happened: a truncation.
        assertTruncatedAtRecordBoundary(client, event, TlsCloseMode.SHUT_RDWR);
        client.assertClosedWithOneEvent();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void shutdownOutputOnAKeepAliveConnectionIsAnsweredByFinWithoutCloseNotify(Cell cell) throws Exception {
        Endpoint client = connect(cell);
        exchange(client, REQUEST);

        TlsCloseEvent event = client.await(client.handler.shutdownOutput());

        InteropReport.observe(describe(event));
        assertTruncatedAtRecordBoundary(client, event, TlsCloseMode.SHUT_WR);
        client.assertClosedWithOneEvent();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("io.github.gracefultls.interop.Cell#all")
    void connectionCloseResponseEndsFromNginx(Cell cell) throws Exception {
        Endpoint client = connect(cell);

        String response = exchange(client, REQUEST_CLOSE);

        TlsCloseEvent event = client.awaitEvent();
        InteropReport.observe(describe(event));
        assertThat(response).contains("Connection: close");
        // nginx ends the connection with a close_notify, then FIN: the peer begins, cleanly.
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        client.assertClosedWithOneEvent();
        assertThat(client.rec.receivedString()).isEqualTo(response);
    }
}
