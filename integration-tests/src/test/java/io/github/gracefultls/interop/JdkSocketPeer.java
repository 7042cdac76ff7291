package io.github.gracefultls.interop;

import io.github.gracefultls.testing.TestCertificates;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;

/**
 * The JDK's blocking TLS, {@code javax.net.ssl.SSLSocket}, as an in-process peer over real loopback sockets: a client
 * layered over a plain {@link Socket} (so that the plain socket can be closed below TLS: a bare FIN), and a server
 * that accepts one connection on a thread of its own. Every read is bounded by {@link Endpoint#AWAIT}.
 *
 * <p>The peer's own verdict is how its blocking read ended ({@link End}): {@code -1} is the JDK's "the peer's
 * close_notify arrived", or, unless {@code com.sun.net.ssl.requireCloseNotify} is set, a bare FIN; an exception
 * otherwise.
 */
final class JdkSocketPeer {

    private JdkSocketPeer() {
    }

    /** How a blocking read loop ended, and what it read before. */
    record End(byte[] bytes, Exception failure) {

        /** The read returned -1: the JDK's end of stream, only after the peer's close_notify. */
        boolean isEndOfStream() {
            return failure == null;
        }

        /** What the report says: "end of stream" or the exception's class and message. */
        String verdict() {
            return failure == null ? "end of stream (-1)"
                    : failure.getClass().getName() + ": " + failure.getMessage();
        }

        @Override
        public String toString() {
            return bytes.length + " B, then " + verdict();
        }
    }

    /** An SSLContext with the test CA as its trust and the server key and chain as its key. */
    static SSLContext sslContext() {
        try {
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(TestCertificates.serverKeyManagerFactory().getKeyManagers(),
                    TestCertificates.trustManagerFactory().getTrustManagers(), null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A connected client: the TLS socket and the plain socket below it. */
    static final class Client implements AutoCloseable {
        final Socket plain;
        final SSLSocket tls;

        private Client(Socket plain, SSLSocket tls) {
            this.plain = plain;
            this.tls = tls;
        }

        /** Connects to 127.0.0.1:{@code port} and completes the handshake, verifying the test host name. */
        static Client connect(int port, String protocol) throws IOException {
            return connect(port, protocol, sslContext());
        }

        static Client connect(int port, String protocol, SSLContext context) throws IOException {
            Socket plain = new Socket();
            try {
                plain.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port),
                        (int) Endpoint.AWAIT.toMillis());
                plain.setSoTimeout((int) Endpoint.AWAIT.toMillis());
                SSLSocket tls = (SSLSocket) context.getSocketFactory()
                        .createSocket(plain, TestHost.NAME, port, true);
                SSLParameters parameters = tls.getSSLParameters();
                parameters.setProtocols(new String[] {protocol});
                parameters.setServerNames(List.of(new SNIHostName(TestHost.NAME)));
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
                tls.setSSLParameters(parameters);
                tls.startHandshake();
                return new Client(plain, tls);
            } catch (IOException | RuntimeException e) {
                plain.close();
                throw e;
            }
        }

        /** Closes the plain socket below TLS: a FIN without close_notify. */
        void closeBelowTls() throws IOException {
            plain.close();
        }

        @Override
        public void close() throws IOException {
            try {
                tls.close();
            } finally {
                plain.close();
            }
        }
    }

    /** A server accepting one connection on its own thread, running a script on it. */
    static final class Server implements AutoCloseable {
        private final SSLServerSocket socket;
        private final CompletableFuture<End> outcome = new CompletableFuture<>();
        private final Thread thread;
        private volatile SSLSocket accepted;

        interface Script {
            End run(SSLSocket socket) throws Exception;
        }

        private Server(SSLServerSocket socket, Script script) {
            this.socket = socket;
            this.thread = new Thread(() -> {
                try (SSLSocket s = (SSLSocket) socket.accept()) {
                    accepted = s;
                    s.setSoTimeout((int) Endpoint.AWAIT.toMillis());
                    s.startHandshake();
                    outcome.complete(script.run(s));
                } catch (Throwable t) {
                    outcome.completeExceptionally(t);
                }
            }, "jdk-sslserversocket");
            thread.setDaemon(true);
            thread.start();
        }

        /** Listens on a free loopback port for one {@code protocol} connection. */
        static Server start(String protocol, Script script) throws IOException {
            SSLServerSocket socket = (SSLServerSocket) sslContext().getServerSocketFactory()
                    .createServerSocket(0, 1, InetAddress.getLoopbackAddress());
            socket.setEnabledProtocols(new String[] {protocol});
            return new Server(socket, script);
        }

        int port() {
            return socket.getLocalPort();
        }

        /** What the script returned; fails if it threw or did not end in time. */
        End await() throws InterruptedException, TimeoutException {
            try {
                return outcome.get(Endpoint.AWAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                throw new AssertionError("the SSLServerSocket's script failed", e.getCause());
            }
        }

        @Override
        public void close() throws Exception {
            socket.close();
            SSLSocket s = accepted;
            if (s != null) {
                s.close();
            }
            thread.join(Duration.ofSeconds(30).toMillis());
        }
    }

    /** Reads until the end of the stream or a failure; a read timeout (30 s) is a failure too. */
    static End readToEnd(Socket socket) {
        ByteArrayOutputStream read = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        try {
            InputStream in = socket.getInputStream();
            for (int n; (n = in.read(buffer)) >= 0; ) {
                read.write(buffer, 0, n);
            }
            return new End(read.toByteArray(), null);
        } catch (IOException e) {
            return new End(read.toByteArray(), e);
        }
    }

    /**
     * A client in a JVM of its own, for a setting read once per JVM ({@code com.sun.net.ssl.requireCloseNotify}):
     * connects to 127.0.0.1:{@code args[0]} with protocol {@code args[1]}, trusting the CA in the PEM file
     * {@code args[3]}, writes {@code args[2]} and a newline, reads to the end, closes, and prints {@code "bytes=N"}
     * and {@code "end=<verdict>"}.
     */
    public static void main(String[] args) throws Exception {
        java.security.KeyStore trust = java.security.KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = java.nio.file.Files.newInputStream(Path.of(args[3]))) {
            trust.setCertificateEntry("ca", java.security.cert.CertificateFactory.getInstance("X.509")
                    .generateCertificate(in));
        }
        javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory
                .getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        try (Client client = Client.connect(Integer.parseInt(args[0]), args[1], context)) {
            client.tls.getOutputStream().write((args[2] + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            client.tls.getOutputStream().flush();
            End end = readToEnd(client.tls);
            System.out.println("bytes=" + end.bytes().length);
            System.out.println("end=" + end.verdict());
        }
    }

    /** The command that runs {@link #main} in a new JVM with {@code property} set, on this JVM's class path. */
    static List<String> childJvm(String property, int port, String protocol, String line, Path caCertificate) {
        return List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-D" + property,
                "-cp", System.getProperty("java.class.path"), JdkSocketPeer.class.getName(),
                String.valueOf(port), protocol, line, caCertificate.toString());
    }
}
