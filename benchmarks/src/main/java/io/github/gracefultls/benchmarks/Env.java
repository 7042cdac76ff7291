package io.github.gracefultls.benchmarks;

import io.netty.handler.ssl.OpenSsl;
import io.netty.util.Version;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What a harness prints first: the JVM, Netty, the CPUs and the load, so that a figure can be put in context. */
final class Env {

    private Env() {
    }

    static String describe() {
        Version netty = Version.identify().get("netty-handler");
        return "JVM " + System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
                + ", Netty " + (netty == null ? "?" : netty.artifactVersion())
                + ", OpenSSL " + (OpenSsl.isAvailable() ? OpenSsl.versionString() : "unavailable")
                + ", " + Runtime.getRuntime().availableProcessors() + " CPUs, max heap "
                + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB, leak detection " + LeakCounter.level()
                + ", " + loadAverage();
    }

    /** The 1-, 5- and 15-minute load averages of the machine, from /proc/loadavg. */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return "load average " + f[0] + " " + f[1] + " " + f[2];
        } catch (IOException | RuntimeException e) {
            return "load average unknown";
        }
    }
}
