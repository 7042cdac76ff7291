package io.github.gracefultls.proxy;

import io.github.gracefultls.testing.FreePorts;
import org.junit.jupiter.api.Assumptions;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * An external program run by a test: curl, nginx, gnutls-cli. The minimum of the interop tests' {@code PeerProcess}
 * and {@code Peers} (package-private there): find the program or skip (fail when {@code CI=true}) naming its Debian
 * package, collect stdout and stderr, wait for the exit with a bound, and stop the process by its PID on close.
 */
final class Proc implements AutoCloseable {

    private static final Duration STOP_GRACE = Duration.ofSeconds(2);

    private final String name;
    private final Process process;
    private final Pump stdout;
    private final Pump stderr;

    private Proc(String name, Process process) {
        this.name = name;
        this.process = process;
        this.stdout = new Pump(process.getInputStream(), name + "-stdout");
        this.stderr = new Pump(process.getErrorStream(), name + "-stderr");
    }

    /** Returns the program's path; skips the test (fails it when {@code CI=true}) if it is not installed. */
    static Path require(String binary, String debianPackage) {
        return requireFile(find(binary), binary + " not found on PATH", debianPackage);
    }

    /** Returns {@code file} if it exists; otherwise skips the test (fails it when {@code CI=true}). */
    static Path requireFile(Optional<Path> file, String what, String debianPackage) {
        if (file.isPresent() && Files.exists(file.get())) {
            return file.get();
        }
        String message = what + ": install the Debian package " + debianPackage + " (apt-get install "
                + debianPackage + ")";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) {
            fail(message + "; CI=true, so a missing peer fails the run");
        }
        Assumptions.abort(message);
        throw new AssertionError("unreachable");
    }

    private static Optional<Path> find(String binary) {
        String path = System.getenv("PATH");
        for (String dir : ((path == null ? "" : path) + ":/usr/sbin:/sbin").split(":")) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, binary);
            if (!dir.isEmpty() && Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate.toAbsolutePath());
            }
        }
        return Optional.empty();
    }

    /** Starts {@code command} in {@code directory}; its stdin stays open. */
    static Proc start(String name, List<String> command, Path directory) {
        try {
            return new Proc(name, new ProcessBuilder(command).directory(directory.toFile()).start());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + command, e);
        }
    }

    /** A free TCP port on 127.0.0.1 (free when this returns; a peer binds it right after). */
    static int freePort() {
        return FreePorts.freePort();
    }

    /** Polls a TCP connect to 127.0.0.1:port until it succeeds; fails if the process exits or the bound passes. */
    void awaitListening(int port, Duration bound) {
        long deadline = System.nanoTime() + bound.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new AssertionError(name + " exited with " + process.exitValue() + " before listening on "
                        + port + "; stderr: " + stderr.text());
            }
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
                return;
            } catch (IOException notYet) {
                if (System.nanoTime() - deadline > 0) {
                    throw new AssertionError(name + " not listening on " + port + " after " + bound + "; stderr: "
                            + stderr.text());
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
            }
        }
    }

    void writeStdin(String text) throws IOException {
        process.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
        process.getOutputStream().flush();
    }

    void closeStdin() throws IOException {
        process.getOutputStream().close();
    }

    /** Waits for the exit and the end of its output; fails after {@code bound}. Returns the exit code. */
    int awaitExit(Duration bound) throws InterruptedException {
        if (!process.waitFor(bound.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError(name + " still running after " + bound + "; stdout: " + stdout.text()
                    + "; stderr: " + stderr.text());
        }
        stdout.thread.join(bound.toMillis());
        stderr.thread.join(bound.toMillis());
        return process.exitValue();
    }

    String stdout() {
        return stdout.text();
    }

    String stderr() {
        return stderr.text();
    }

    /** Stops the process by its PID: SIGTERM, then SIGKILL after a grace period. */
    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS);
            }
        }
    }

    @Override
    public String toString() {
        return name + "(pid " + process.pid() + ")";
    }

    /** Copies one output stream of the process into memory, on a daemon thread. */
    private static final class Pump {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final Thread thread;

        Pump(InputStream in, String threadName) {
            thread = new Thread(() -> {
                byte[] buffer = new byte[8192];
                try (in) {
                    int n;
                    while ((n = in.read(buffer)) >= 0) {
                        synchronized (bytes) {
                            bytes.write(buffer, 0, n);
                        }
                    }
                } catch (IOException ignored) {
                    // the process is gone
                }
            }, threadName);
            thread.setDaemon(true);
            thread.start();
        }

        String text() {
            synchronized (bytes) {
                return bytes.toString(StandardCharsets.UTF_8);
            }
        }
    }
}
