package io.github.gracefultls.probe;

import io.github.gracefultls.testing.FreePorts;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An external TLS peer (gnutls-serv, openssl s_server, nginx) run as a process for one test, and killed by PID,
 * with its children, on {@link #close()}.
 */
final class PeerProcess implements AutoCloseable {

    private final Process process;
    private final Path log;

    private PeerProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /**
     * Returns the path of {@code binary}, or skips the test (fails it when the environment variable CI is
     * {@code true}) with a message naming the Debian package to install.
     */
    static String require(String binary, String debianPackage) {
        String path = System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/sbin"
                + File.pathSeparator + "/usr/local/sbin";
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, binary))) {
                return Path.of(dir, binary).toString();
            }
        }
        String message = binary + " not found: install the Debian package " + debianPackage;
        if ("true".equals(System.getenv("CI"))) {
            Assertions.fail(message);
        }
        Assumptions.abort(message);
        throw new AssertionError(message);
    }

    /** A TCP port free on loopback right now. */
    static int freePort() {
        return FreePorts.freePort();
    }

    /**
     * Starts {@code command}, its output going to a log file in {@code dir}, and waits until it accepts TCP
     * connections on {@code port} of 127.0.0.1. Its stdin stays open (openssl s_server ends on stdin EOF).
     */
    static PeerProcess start(Path dir, int port, List<String> command) throws IOException, InterruptedException {
        Path log = Files.createTempFile(dir, "peer-", ".log");
        Process process = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        PeerProcess peer = new PeerProcess(process, log);
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (true) {
                if (!process.isAlive()) {
                    throw new AssertionError(command.get(0) + " exited with " + process.exitValue() + ": "
                            + peer.log());
                }
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
                    return peer;
                } catch (IOException notYet) {
                    if (System.nanoTime() > deadline) {
                        throw new AssertionError(command.get(0) + " does not listen on port " + port + ": "
                                + peer.log());
                    }
                    Thread.sleep(20); // polling a process we do not control: nothing to wait on
                }
            }
        } catch (Throwable t) {
            peer.close();
            throw t;
        }
    }

    String log() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() {
        ProcessHandle handle = process.toHandle();
        handle.descendants().forEach(ProcessHandle::destroyForcibly);
        handle.destroyForcibly();
        try {
            process.onExit().get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            // reported by the test that follows, if it matters
        }
    }
}
