package io.github.gracefultls.interop;

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
 * Finds the peer programs on the {@code PATH}. A missing program fails the test when the environment variable
 * {@code CI} is {@code true}, and skips it otherwise; either way the message names the Debian package to install.
 */
final class Peers {

    /** A peer program and the Debian package it comes from. */
    enum Program {
        GNUTLS_SERV("gnutls-serv", "gnutls-bin"),
        GNUTLS_CLI("gnutls-cli", "gnutls-bin"),
        OPENSSL("openssl", "openssl"),
        NGINX("nginx", "nginx"),
        CURL("curl", "curl"),
        PYTHON3("python3", "python3");

        final String binary;
        final String debianPackage;

        Program(String binary, String debianPackage) {
            this.binary = binary;
            this.debianPackage = debianPackage;
        }
    }

    /** Where root's tools live on Debian, often missing from a user's PATH (nginx is in /usr/sbin). */
    private static final List<String> EXTRA_DIRECTORIES = List.of("/usr/sbin", "/sbin");

    private static final Map<String, Optional<Path>> FOUND = new ConcurrentHashMap<>();

    private Peers() {
    }

    /** Whether this run is in CI, where a missing peer is an error rather than a reason to skip. */
    static boolean isCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** Returns the absolute path of the program; fails (CI) or skips (elsewhere) the test if it is missing. */
    static Path require(Program program) {
        return require(program.binary, program.debianPackage, isCi());
    }

    /** As {@link #require(Program)}, for any binary; {@code ci} says whether a missing one fails or skips. */
    static Path require(String binary, String debianPackage, boolean ci) {
        Optional<Path> path = find(binary);
        if (path.isPresent()) {
            return path.get();
        }
        String message = binary + " not found on PATH: install the Debian package " + debianPackage
                + " (apt-get install " + debianPackage + ")";
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
    static Path requirePython() {
        Path python3 = require(Program.PYTHON3);
        Path resolved = PYTHON.computeIfAbsent(python3, Peers::interpreter);
        if (resolved == null) {
            String message = python3 + " has no usable ssl module: install the Debian package python3";
            if (isCi()) {
                fail(message);
            }
            Assumptions.abort(message);
        }
        return resolved;
    }

    private static final Map<Path, Path> PYTHON = new ConcurrentHashMap<>();

    private static Path interpreter(Path python3) {
        try {
            Process p = new ProcessBuilder(python3.toString(), "-c",
                    "import ssl, sys; print(sys.executable)").redirectErrorStream(true).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
                    .trim();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                return null;
            }
            Path executable = Path.of(out);
            return Files.isExecutable(executable) ? executable : python3;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** The program's absolute path, if it is on the PATH or in /usr/sbin or /sbin. */
    static Optional<Path> find(Program program) {
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
