package io.github.gracefultls.benchmarks;

import io.netty.handler.ssl.SslProvider;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A {@link ScaleServer} in a JVM of its own, on this JVM's class path, driven line by line. */
final class ServerProcess implements AutoCloseable {

    private final Process process;
    private final Writer commands;
    private final BlockingQueue<String> answers = new LinkedBlockingQueue<>();
    final int gracefulPort;
    final int nettyPort;

    ServerProcess(SslProvider provider, String protocol) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xms1g");
        cmd.add("-Xmx1g");
        String leakLevel = System.getProperty("io.netty.leakDetection.level");
        if (leakLevel != null) {
            cmd.add("-Dio.netty.leakDetection.level=" + leakLevel);
        }
        if (Runtime.version().feature() >= 21) {
            cmd.add("--enable-native-access=ALL-UNNAMED");
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(ScaleServer.class.getName());
        cmd.add(provider.name());
        cmd.add(protocol);
        process = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        commands = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    answers.add(line);
                }
            } catch (IOException e) {
                answers.add("ERROR " + e);
            }
            answers.add("EOF");
        }, "scale-server-reader");
        reader.setDaemon(true);
        reader.start();
        String[] ready = await("READY", 60).split(" ");
        gracefulPort = Integer.parseInt(ready[1]);
        nettyPort = Integer.parseInt(ready[2]);
    }

    void send(String line) throws IOException {
        commands.write(line + "\n");
        commands.flush();
    }

    /** Waits for the next answer, which must start with {@code prefix}, and returns it. */
    String await(String prefix, long timeoutSeconds) throws InterruptedException {
        String line = answers.poll(timeoutSeconds, TimeUnit.SECONDS);
        if (line == null) {
            throw new IllegalStateException("the server process did not answer " + prefix + " in " + timeoutSeconds
                    + " s");
        }
        if (!line.startsWith(prefix)) {
            throw new IllegalStateException("the server process answered \"" + line + "\", expected " + prefix);
        }
        return line;
    }

    @Override
    public void close() throws InterruptedException {
        try {
            send("QUIT");
        } catch (IOException e) {
            // already gone
        }
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
    }
}
