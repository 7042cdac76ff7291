package io.github.gracefultls.faults;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The {@link SoakClient} process: same java, same class path, paranoid leak detection. It exits when its input
 * ends, so it does not outlive this JVM; {@link #close()} ends it in any case.
 */
final class SoakClientProcess implements AutoCloseable {
    final Process process;
    final Path log;
    final CompletableFuture<String> ready = new CompletableFuture<>();
    final CompletableFuture<Void> started = new CompletableFuture<>();
    final CompletableFuture<Map<String, Long>> stats = new CompletableFuture<>();
    private final Writer commands;
    private final Consumer<String[]> onReport;
    private final Consumer<String> onError;

    /**
     * Starts the process. {@code onReport} takes each connection's report line, split in 4, on the reader
     * thread; {@code onError} takes what went wrong reading them.
     */
    SoakClientProcess(Path ca, Path log, Consumer<String[]> onReport, Consumer<String> onError) throws IOException {
        this.log = log;
        this.onReport = onReport;
        this.onError = onError;
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Dio.netty.leakDetection.level=paranoid");
        cmd.add("-Dsoak.rampSeconds=" + SoakTest.RAMP_SECONDS);
        cmd.add("-Dsoak.handshakeTimeoutMillis=" + SoakTest.HANDSHAKE_TIMEOUT_MILLIS);
        // Its garbage collections, next to its log, for diagnosis.
        cmd.add("-Xlog:gc:file=" + log.resolveSibling("soak-client-gc.log") + ":uptime:filecount=0");
        String records = System.getProperty("io.netty.leakDetection.targetRecords");
        if (records != null) {
            cmd.add("-Dio.netty.leakDetection.targetRecords=" + records);
        }
        if (Runtime.version().feature() >= 21) {
            cmd.add("--enable-native-access=ALL-UNNAMED");
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(SoakClient.class.getName());
        cmd.add(ca.toString());
        cmd.add(Integer.toString(SoakTest.DWELL_MILLIS));
        Files.createDirectories(log.getParent());
        Files.writeString(log.resolveSibling("soak-client.cmd"), String.join(" ", cmd) + "\n");
        process = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
        commands = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(this::readReports, "soak-client-reader");
        reader.setDaemon(true);
        reader.start();
    }

    private void readReports() {
        try (BufferedReader r = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                String[] f = line.split(" ", 4);
                switch (f[0]) {
                    case SoakClient.READY:
                        ready.complete(line);
                        break;
                    case SoakClient.STARTED:
                        started.complete(null);
                        break;
                    case SoakClient.STATS:
                        Map<String, Long> m = new HashMap<>();
                        for (String kv : line.split(" ")) {
                            int eq = kv.indexOf('=');
                            if (eq > 0) {
                                m.put(kv.substring(0, eq), Long.parseLong(kv.substring(eq + 1)));
                            }
                        }
                        stats.complete(m);
                        break;
                    case SoakClient.BYE:
                        break;
                    default:
                        onReport.accept(f);
                        break;
                }
            }
        } catch (IOException | RuntimeException e) {
            onError.accept("reading the client process's reports: " + e);
        }
        IllegalStateException gone = new IllegalStateException("the client process ended its output early; see "
                + log);
        ready.completeExceptionally(gone);
        started.completeExceptionally(gone);
        stats.completeExceptionally(gone);
    }

    void send(String line) throws IOException {
        commands.write(line);
        commands.write('\n');
        commands.flush();
    }

    @Override
    public void close() throws InterruptedException {
        try {
            commands.close(); // end of input: the child exits
        } catch (IOException e) {
            // already gone
        }
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
