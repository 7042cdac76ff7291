package io.github.gracefultls.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntFunction;
import java.util.function.Predicate;

/**
 * An external peer process (gnutls-serv, openssl, nginx, curl, Python). Its stdout and stderr are copied to files
 * under {@link #logDirectory()} and kept in memory for assertions. {@link #close()} stops it and its children by
 * their PIDs (SIGTERM, then SIGKILL) and is safe to call more than once; a JVM shutdown hook stops whatever a crashed
 * test left running.
 */
public final class PeerProcess implements AutoCloseable {

    private static final Duration STOP_GRACE = Duration.ofSeconds(2);
    private static final Set<PeerProcess> RUNNING = ConcurrentHashMap.newKeySet();
    private static final AtomicInteger SEQUENCE = new AtomicInteger();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> RUNNING.forEach(p -> p.process.destroyForcibly()),
                "peer-process-reaper"));
    }

    private final String name;
    private final List<String> command;
    private final Process process;
    private final Output stdout;
    private final Output stderr;

    private PeerProcess(String name, List<String> command, Process process, Path logDirectory) {
        this.name = name;
        this.command = command;
        this.process = process;
        this.stdout = new Output(process.getInputStream(), logDirectory.resolve(name + ".stdout"), name + "-stdout");
        this.stderr = new Output(process.getErrorStream(), logDirectory.resolve(name + ".stderr"), name + "-stderr");
    }

    /**
     * Where the peers' output goes: {@code interop-peers/} in the build directory (the system property
     * {@code interop.target}, else {@code target}).
     */
    public static Path logDirectory() {
        return Path.of(System.getProperty("interop.target", "target")).toAbsolutePath().resolve("interop-peers");
    }

    /** Starts {@code command}; {@code name} (made unique) names its log files. The process's stdin stays open. */
    public static PeerProcess start(String name, List<String> command, Path workingDirectory) {
        String unique = String.format("%03d-%s", SEQUENCE.incrementAndGet(), name.replaceAll("[^A-Za-z0-9._-]", "_"));
        Path logDirectory = logDirectory();
        try {
            Files.createDirectories(logDirectory);
            Files.writeString(logDirectory.resolve(unique + ".cmd"), String.join(" ", command) + "\n");
            Process process = new ProcessBuilder(command).directory(workingDirectory.toFile()).start();
            PeerProcess peer = new PeerProcess(unique, command, process, logDirectory);
            RUNNING.add(peer);
            return peer;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + command, e);
        }
    }

    /**
     * Starts a server on a free port ({@link FreePorts}) and waits until it accepts connections on 127.0.0.1.
     * {@code commandForPort} builds the command line for a port; if the process exits before it listens (the port
     * was taken meanwhile), another port is tried.
     */
    public static PeerProcess startListening(String name, IntFunction<List<String>> commandForPort,
                                             Path workingDirectory, Duration bound) {
        AssertionError last = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            int port = FreePorts.freePort();
            PeerProcess peer = start(name, commandForPort.apply(port), workingDirectory);
            try {
                peer.awaitListening(port, bound);
                peer.port = port;
                return peer;
            } catch (AssertionError e) {
                boolean exitedByItself = !peer.isAlive();
                peer.close();
                if (!exitedByItself) {
                    throw e;
                }
                last = e;
            } catch (RuntimeException e) {
                peer.close();
                throw e;
            }
        }
        throw last;
    }

    private volatile int port = -1;

    /** The port given to {@link #startListening}, or -1. */
    public int port() {
        return port;
    }

    /**
     * Polls a TCP connect to 127.0.0.1:port until it succeeds; fails if the process exits or the bound passes. A
     * process we do not control tells us nothing when it listens: polling is the only way.
     */
    public void awaitListening(int port, Duration bound) {
        long deadline = System.nanoTime() + bound.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new AssertionError(name + " exited with " + process.exitValue() + " before listening on port "
                        + port + ": " + command + "\nstderr: " + stderr.text() + "\nstdout: " + stdout.text());
            }
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
                return;
            } catch (IOException notYet) {
                if (System.nanoTime() - deadline > 0) {
                    throw new AssertionError(name + " is not listening on port " + port + " after " + bound + ": "
                            + command + "\nstderr: " + stderr.text());
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
            }
        }
    }

    public String name() {
        return name;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Writes to the process's stdin and flushes. */
    public void writeStdin(String text) {
        try {
            OutputStream in = process.getOutputStream();
            in.write(text.getBytes(StandardCharsets.UTF_8));
            in.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write to the stdin of " + name, e);
        }
    }

    /** Closes the process's stdin: the peer reads end of file. */
    public void closeStdin() {
        try {
            process.getOutputStream().close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close the stdin of " + name, e);
        }
    }

    /** Everything the process wrote to stdout so far. */
    public String stdout() {
        return stdout.text();
    }

    /** Everything the process wrote to stderr so far. */
    public String stderr() {
        return stderr.text();
    }

    /** Both outputs so far, for a failure message. */
    public String output() {
        return "stdout:\n" + stdout.text() + "\nstderr:\n" + stderr.text();
    }

    /** Waits until stdout satisfies {@code condition}; fails after {@code bound}. Returns stdout. */
    public String awaitStdout(Predicate<String> condition, Duration bound, String description)
            throws InterruptedException {
        return stdout.await(condition, bound, description);
    }

    /** Waits until stdout contains {@code text}. */
    public String awaitStdout(String text, Duration bound) throws InterruptedException {
        return stdout.await(s -> s.contains(text), bound, "\"" + text + "\" on stdout");
    }

    /** Waits for the process to exit and its output to be read; fails after {@code bound}. Returns the exit code. */
    public int awaitExit(Duration bound) throws InterruptedException {
        if (!process.waitFor(bound.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError(name + " still running after " + bound + "\nstdout: " + stdout.text()
                    + "\nstderr: " + stderr.text());
        }
        stdout.awaitEnd(bound);
        stderr.awaitEnd(bound);
        RUNNING.remove(this);
        return process.exitValue();
    }

    /** The exit code, or null while running. */
    public Integer exitValue() {
        return process.isAlive() ? null : process.exitValue();
    }

    /** Sends SIGTERM to the process (by its PID), as {@code kill PID} does. */
    public void terminate() {
        process.destroy();
    }

    /** Stops the process by its PID: SIGTERM, then SIGKILL after a grace period. */
    @Override
    public void close() {
        try {
            if (process.isAlive()) {
                process.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroy();
                if (!process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(STOP_GRACE.toMillis(), TimeUnit.MILLISECONDS);
                }
            }
            stdout.awaitEnd(STOP_GRACE);
            stderr.awaitEnd(STOP_GRACE);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        } finally {
            try {
                process.getOutputStream().close();
            } catch (IOException ignored) {
                // the process is gone
            }
            RUNNING.remove(this);
        }
    }

    @Override
    public String toString() {
        return name + "(pid " + process.pid() + ")";
    }

    /** Copies one output stream of the process to a file and to memory, on its own daemon thread. */
    private static final class Output {
        private final StringBuilder text = new StringBuilder();
        private final Thread pump;
        private boolean ended;

        Output(InputStream in, Path file, String threadName) {
            pump = new Thread(() -> pump(in, file), threadName);
            pump.setDaemon(true);
            pump.start();
        }

        private void pump(InputStream in, Path file) {
            byte[] buffer = new byte[8192];
            try (in; OutputStream log = Files.newOutputStream(file)) {
                int n;
                while ((n = in.read(buffer)) >= 0) {
                    log.write(buffer, 0, n);
                    log.flush();
                    synchronized (this) {
                        text.append(new String(buffer, 0, n, StandardCharsets.UTF_8));
                        notifyAll();
                    }
                }
            } catch (IOException e) {
                synchronized (this) {
                    text.append("\n[output copy failed: ").append(e).append(']');
                }
            } finally {
                synchronized (this) {
                    ended = true;
                    notifyAll();
                }
            }
        }

        synchronized String text() {
            return text.toString();
        }

        synchronized String await(Predicate<String> condition, Duration bound, String description)
                throws InterruptedException {
            long deadline = System.nanoTime() + bound.toNanos();
            while (!condition.test(text.toString())) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0 || ended) {
                    if (condition.test(text.toString())) {
                        break;
                    }
                    throw new AssertionError((ended ? "output ended" : "timed out after " + bound)
                            + " waiting for " + description + "; output so far:\n" + text);
                }
                wait(left);
            }
            return text.toString();
        }

        void awaitEnd(Duration bound) throws InterruptedException {
            pump.join(bound.toMillis());
        }
    }
}
