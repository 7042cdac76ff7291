package io.github.gracefultls.reactor;

import io.github.gracefultls.testing.Tls;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslContext;

import javax.net.ssl.SSLSocket;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/** A JDK {@link SSLSocket} over a plain socket, which can end the transport without close_notify. */
final class RawTlsClient {

    private RawTlsClient() {
    }

    /** Sends one request, reads the response, then closes the TCP socket under the TLS session. */
    static String getThenDropTcp(int port, String path) throws IOException {
        SslContext netty = Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3);
        javax.net.ssl.SSLContext jdk = ((JdkSslContext) netty).context();
        try (Socket plain = new Socket()) {
            plain.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
            plain.setSoTimeout(10_000);
            SSLSocket tls = (SSLSocket) jdk.getSocketFactory().createSocket(plain, "localhost", port, false);
            tls.setEnabledProtocols(new String[] {Tls.TLS_1_3});
            tls.startHandshake();
            OutputStream out = tls.getOutputStream();
            out.write(("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = tls.getInputStream();
            StringBuilder response = new StringBuilder();
            byte[] buf = new byte[4096];
            while (!response.toString().endsWith("hello")) {
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
}
