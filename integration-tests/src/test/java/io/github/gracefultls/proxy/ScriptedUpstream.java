package io.github.gracefultls.proxy;

import io.github.gracefultls.testing.TestCertificates;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * An upstream server on blocking sockets, plain or TLS (a JDK {@code SSLSocket} layered over the plain one, so that
 * a script can drop TCP under TLS), that runs a script per connection on its own thread and reports what the script
 * returned.
 */
final class ScriptedUpstream implements AutoCloseable {

    /** What the upstream does with one connection; returns what it saw, for the test. */
    @FunctionalInterface
    interface Script {
        String run(Conn conn) throws Exception;
    }

    private static final int SO_TIMEOUT_MILLIS = 10_000;

    private final ServerSocket server;
    private final BlockingQueue<Object> results = new LinkedBlockingQueue<>();
    private final Thread acceptor;

    ScriptedUpstream(boolean tls, Script script) throws Exception {
        SSLContext context = null;
        if (tls) {
            context = SSLContext.getInstance("TLS");
            context.init(TestCertificates.serverKeyManagerFactory().getKeyManagers(), null, null);
        }
        SSLContext ssl = context;
        server = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        acceptor = new Thread(() -> {
            while (!server.isClosed()) {
                try {
                    Socket plain = server.accept();
                    Thread t = new Thread(() -> serve(plain, ssl, script), "upstream-conn");
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return; // closed
                }
            }
        }, "upstream-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void serve(Socket plain, SSLContext ssl, Script script) {
        try (plain) {
            plain.setSoTimeout(SO_TIMEOUT_MILLIS);
            Socket io = plain;
            if (ssl != null) {
                SSLSocket s = (SSLSocket) ssl.getSocketFactory().createSocket(plain, null, plain.getPort(), false);
                s.setUseClientMode(false);
                s.startHandshake();
                io = s;
            }
            results.add(script.run(new Conn(plain, io)));
        } catch (Throwable t) {
            results.add(t);
        }
    }

    int port() {
        return server.getLocalPort();
    }

    /** Waits for what the next connection's script returned; rethrows what it threw. */
    String awaitResult(Duration bound) throws Exception {
        Object r = results.poll(bound.toMillis(), TimeUnit.MILLISECONDS);
        if (r == null) {
            throw new AssertionError("no upstream connection ended within " + bound);
        }
        if (r instanceof Exception) {
            throw (Exception) r;
        }
        if (r instanceof Error) {
            throw (Error) r;
        }
        return (String) r;
    }

    @Override
    public void close() throws Exception {
        server.close();
        acceptor.join(SO_TIMEOUT_MILLIS);
    }

    /** One connection: {@code io} is the TLS socket on a TLS upstream, else the plain one. */
    static final class Conn {
        final Socket plain;
        final Socket io;
        final ByteArrayOutputStream received = new ByteArrayOutputStream();

        Conn(Socket plain, Socket io) {
            this.plain = plain;
            this.io = io;
        }

        /** Reads until {@code terminator} has arrived (e.g. the end of HTTP request headers). */
        void readUntil(String terminator) throws IOException {
            InputStream in = io.getInputStream();
            while (!received.toString(StandardCharsets.ISO_8859_1).contains(terminator)) {
                int b = in.read();
                if (b < 0) {
                    throw new IOException("end of stream before " + terminator.strip());
                }
                received.write(b);
            }
        }

        /**
         * Reads to the end of the stream: returns "FIN" for an end of stream (TLS: close_notify), "RESET" for a
         * reset, "TLS ERROR (...)" for another failure.
         */
        String readToEnd() throws IOException {
            byte[] buffer = new byte[65536];
            try {
                int n;
                while ((n = io.getInputStream().read(buffer)) >= 0) {
                    received.write(buffer, 0, n);
                }
                return "FIN";
            } catch (SocketException e) {
                return "RESET";
            } catch (IOException e) {
                return "TLS ERROR (" + e + ")"; // e.g. a FIN without close_notify under TLS
            }
        }

        void write(byte[] bytes) throws IOException {
            io.getOutputStream().write(bytes);
            io.getOutputStream().flush();
        }

        /**
         * Ends cleanly: plain, a FIN; TLS, close_notify and FIN. Then reads to the end, so that closing leaves no
         * unread byte (which would make the kernel send a reset); returns how the input ended.
         */
        String endCleanly() throws IOException {
            if (io instanceof SSLSocket) {
                io.shutdownOutput(); // close_notify (the JDK's SSLSocket half-close)
            }
            plain.shutdownOutput();
            return readToEnd();
        }

        /** Closes with a TCP reset. */
        void reset() throws IOException {
            plain.setSoLinger(true, 0);
            plain.close();
        }

        /** Closes TCP under TLS: a FIN without close_notify. */
        void dropTcp() throws IOException {
            plain.close();
        }
    }
}
