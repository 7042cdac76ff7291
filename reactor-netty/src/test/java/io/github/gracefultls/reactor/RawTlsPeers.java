package io.github.gracefultls.reactor;

import io.github.gracefultls.testing.Tls;
import io.netty.handler.ssl.JdkSslContext;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * TLS peers over JDK sockets that can end the transport without {@code close_notify}: the TLS socket is layered over
 * a plain one, and closing the plain socket alone is a bare TCP end (FIN) under the TLS session.
 */
final class RawTlsPeers {

    private static final int SO_TIMEOUT_MILLIS = 30_000;

    private RawTlsPeers() {
    }

    private static SSLContext jdk(boolean server) {
        return ((JdkSslContext) (server ? Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3)
                : Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3))).context();
    }

    /** Reads up to and including the blank line that ends an HTTP head. */
    static String readHead(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int matched = 0;
        byte[] end = {'\r', '\n', '\r', '\n'};
        while (matched < end.length) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("the stream ended inside an HTTP head: " + head);
            }
            head.write(b);
            matched = b == end[matched] ? matched + 1 : (b == '\r' ? 1 : 0);
        }
        return head.toString(StandardCharsets.US_ASCII);
    }

    /**
     * An HTTP/1.1 server on a thread of its own, one connection at a time, TLSv1.3 or {@code protocol}: it reads a
     * request head, writes {@code head} and the first {@code bodyBytes} bytes of {@code body}, then ends the
     * connection, with {@code close_notify} ({@code clean}) or with a bare FIN under the TLS session.
     */
    static final class CuttingServer implements AutoCloseable {

        private final ServerSocket listener;
        private final Thread thread;

        CuttingServer(String head, byte[] body, int bodyBytes, boolean clean) throws IOException {
            this(head, body, bodyBytes, clean, Tls.TLS_1_3);
        }

        CuttingServer(String head, byte[] body, int bodyBytes, boolean clean, String protocol) throws IOException {
            listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
            SSLContext context = jdk(true);
            thread = new Thread(() -> {
                while (!listener.isClosed()) {
                    try (Socket plain = listener.accept()) {
                        plain.setSoTimeout(SO_TIMEOUT_MILLIS);
                        SSLSocket tls = (SSLSocket) context.getSocketFactory().createSocket(plain, null,
                                plain.getPort(), false);
                        tls.setUseClientMode(false);
                        tls.setEnabledProtocols(new String[] {protocol});
                        readHead(tls.getInputStream());
                        OutputStream out = tls.getOutputStream();
                        out.write(head.getBytes(StandardCharsets.US_ASCII));
                        out.write(body, 0, bodyBytes);
                        out.flush();
                        if (clean) {
                            tls.close(); // close_notify; the plain socket stays open (autoClose false)
                        }
                        // plain.close() by try-with-resources: the TCP end
                    } catch (IOException e) {
                        // listener closed, or a client that went away: next connection
                    }
                }
            }, "cutting-server");
            thread.setDaemon(true);
            thread.start();
        }

        int port() {
            return listener.getLocalPort();
        }

        @Override
        public void close() throws Exception {
            listener.close();
            thread.join(SO_TIMEOUT_MILLIS);
        }
    }

    /** Sends a request and reads its response's head and body up to {@code expectedTail}, then drops TCP. */
    static String getThenDropTcp(int port, String path, String expectedTail) throws IOException {
        try (Socket plain = connect(port)) {
            SSLSocket tls = layer(plain, port, Tls.TLS_1_3);
            OutputStream out = tls.getOutputStream();
            out.write(("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = tls.getInputStream();
            StringBuilder response = new StringBuilder();
            byte[] buf = new byte[4096];
            while (!response.toString().endsWith(expectedTail)) {
                int n = in.read(buf);
                if (n < 0) {
                    break;
                }
                response.append(new String(buf, 0, n, StandardCharsets.US_ASCII));
            }
            return response.toString();
            // plain.close(): a FIN, no close_notify.
        }
    }

    /**
     * Sends the head of a request with a {@code Content-Length} of {@code body.length} and the first
     * {@code sentBytes} of its body over {@code protocol}, then drops TCP without close_notify.
     */
    static void postCutThenDropTcp(int port, String path, byte[] body, int sentBytes, String protocol)
            throws IOException {
        try (Socket plain = connect(port)) {
            SSLSocket tls = layer(plain, port, protocol);
            OutputStream out = tls.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + body.length
                    + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body, 0, sentBytes);
            out.flush();
        }
    }

    private static Socket connect(int port) throws IOException {
        Socket plain = new Socket();
        plain.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), SO_TIMEOUT_MILLIS);
        plain.setSoTimeout(SO_TIMEOUT_MILLIS);
        return plain;
    }

    private static SSLSocket layer(Socket plain, int port, String protocol) throws IOException {
        SSLSocket tls = (SSLSocket) jdk(false).getSocketFactory().createSocket(plain, "localhost", port, false);
        tls.setEnabledProtocols(new String[] {protocol});
        tls.startHandshake();
        return tls;
    }
}
