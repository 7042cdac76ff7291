package io.github.gracefultls.testing;

import org.junit.jupiter.api.Assumptions;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finds the peer programs (gnutls-serv, openssl, nginx, ..., and the go and cargo that build peers) on the {@code PATH} and in root's tool directories. A
 * missing program fails the test when the environment variable {@code CI} is {@code true}, and skips it otherwise;
 * either way the message names the Debian package to install.
 */
public final class Peers {

    /** A peer program and the Debian package it comes from. */
    public enum Program {
        GNUTLS_SERV("gnutls-serv", "gnutls-bin"),
        GNUTLS_CLI("gnutls-cli", "gnutls-bin"),
        OPENSSL("openssl", "openssl"),
        NGINX("nginx", "nginx"),
        CURL("curl", "curl"),
        PYTHON3("python3", "python3"),
        /** Builds the Go crypto/tls peer (interop.GoPeerTest); standard library only, so no module download. */
        GO("go", "golang-go"),
        /** Builds the rustls peer (interop.RustlsPeerTest), offline against Debian's crate registry. */
        CARGO("cargo", "cargo");

        private final String binary;
        private final String debianPackage;

        Program(String binary, String debianPackage) {
            this.binary = binary;
            this.debianPackage = debianPackage;
        }

        public String binary() {
            return binary;
        }

        public String debianPackage() {
            return debianPackage;
        }
    }

    /** Where root's tools live on Debian, often missing from a user's PATH (nginx is in /usr/sbin). */
    private static final List<String> EXTRA_DIRECTORIES = List.of("/usr/sbin", "/usr/local/sbin", "/sbin");

    private static final Map<String, Optional<Path>> FOUND = new ConcurrentHashMap<>();
    private static final Map<Path, Optional<Path>> PYTHON = new ConcurrentHashMap<>();

    private Peers() {
    }

    /** Whether this run is in CI, where a missing peer is an error rather than a reason to skip. */
    public static boolean isCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** Returns the absolute path of the program; fails (CI) or skips (elsewhere) the test if it is missing. */
    public static Path require(Program program) {
        return require(program.binary, program.debianPackage, isCi());
    }

    /** As {@link #require(Program)}, for any binary; {@code ci} says whether a missing one fails or skips. */
    public static Path require(String binary, String debianPackage, boolean ci) {
        return present(find(binary), binary + " not found on PATH", debianPackage, ci);
    }

    /** Returns {@code file} if it exists; otherwise fails (CI) or skips the test, naming the Debian package. */
    public static Path requireFile(Path file, String what, String debianPackage) {
        return present(Files.exists(file) ? Optional.of(file) : Optional.empty(), what + " " + file + " not found",
                debianPackage, isCi());
    }

    private static Path present(Optional<Path> path, String missing, String debianPackage, boolean ci) {
        if (path.isPresent()) {
            return path.get();
        }
        String message = missing + ": install the Debian package" + (debianPackage.contains(" ") ? "s " : " ")
                + debianPackage + " (apt-get install "
                + debianPackage + ")";
        if (ci) {
            fail(message + "; CI=true, so a missing peer fails the run");
        }
        Assumptions.abort(message);
        throw new AssertionError("unreachable");
    }

    /**
     * The Python interpreter itself, with its {@code ssl} module checked: {@code python3} on the PATH may be a
     * wrapper script (pyenv) that costs a shell per start.
     */
    public static Path requirePython() {
        Path python3 = require(Program.PYTHON3);
        return present(PYTHON.computeIfAbsent(python3, Peers::interpreter), python3 + " has no usable ssl module",
                Program.PYTHON3.debianPackage, isCi());
    }

    private static Optional<Path> interpreter(Path python3) {
        try {
            Process p = new ProcessBuilder(python3.toString(), "-c",
                    "import ssl, sys; print(sys.executable)").redirectErrorStream(true).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                return Optional.empty();
            }
            Path executable = Path.of(out);
            return Optional.of(Files.isExecutable(executable) ? executable : python3);
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }

    /** The program's absolute path, if it is on the PATH or in /usr/sbin, /usr/local/sbin or /sbin. */
    public static Optional<Path> find(Program program) {
        return find(program.binary);
    }

    private static Optional<Path> find(String binary) {
        return FOUND.computeIfAbsent(binary, Peers::search);
    }

    private static Optional<Path> search(String binary) {
        List<String> directories = new ArrayList<>();
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(File.pathSeparator)) {
                if (!dir.isEmpty()) {
                    directories.add(dir);
                }
            }
        }
        directories.addAll(EXTRA_DIRECTORIES);
        for (String dir : directories) {
            Path candidate = Path.of(dir, binary);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate.toAbsolutePath());
            }
        }
        return Optional.empty();
    }
}
