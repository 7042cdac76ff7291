package io.github.gracefultls.interop;

import io.github.gracefultls.testing.Peers;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/** The versions of the peer programs, for the report's header. */
final class PeerVersions {

    private PeerVersions() {
    }

    /**
     * E.g. "gnutls-cli 3.7.9, OpenSSL 3.0.x, nginx/1.22.1, curl 7.88.1, Python 3.11.2, go1.19.8, cargo 1.65.0,
     * rustls 0.20.8 (Debian crate registry)".
     */
    static String describe() {
        List<String> versions = new ArrayList<>();
        versions.add(version(Peers.Program.GNUTLS_CLI, "--version"));
        versions.add(version(Peers.Program.OPENSSL, "version"));
        versions.add(version(Peers.Program.NGINX, "-v"));
        versions.add(version(Peers.Program.CURL, "--version"));
        versions.add(version(Peers.Program.PYTHON3, "--version"));
        versions.add(version(Peers.Program.GO, "version")); // "go version go1.19.8 linux/amd64" -> "go1.19.8"
        versions.add(version(Peers.Program.CARGO, Files.isExecutable(ForeignPeers.DEBIAN_CARGO)
                ? Optional.of(ForeignPeers.DEBIAN_CARGO) : Peers.find(Peers.Program.CARGO), "--version"));
        versions.add(ForeignPeers.rustlsCrate().map(crate -> crate.getFileName().toString().replace('-', ' ')
                + " (Debian crate registry)").orElse("rustls missing (package librust-rustls-dev)"));
        return String.join(", ", versions);
    }

    private static String version(Peers.Program program, String argument) {
        return version(program, Peers.find(program), argument);
    }

    private static String version(Peers.Program program, Optional<Path> path, String argument) {
        if (path.isEmpty()) {
            return program.binary() + " missing (package " + program.debianPackage() + ")";
        }
        try {
            Process p = new ProcessBuilder(path.get().toString(), argument).redirectErrorStream(true).start();
            p.getOutputStream().close();
            String text;
            try (InputStream in = p.getInputStream()) {
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
            String first = text.lines().findFirst().orElse("").trim().replaceFirst("^nginx version: ", "");
            String[] words = first.split(" ");
            if (first.startsWith("go version ") && words.length > 2) {
                return words[2];
            }
            return words.length > 2 ? words[0] + " " + words[1] : first; // "curl 7.88.1", "OpenSSL 3.0.x"
        } catch (IOException e) {
            return program.binary() + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return program.binary() + ": interrupted";
        }
    }
}
