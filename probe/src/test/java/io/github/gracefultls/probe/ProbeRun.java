package io.github.gracefultls.probe;

import org.junit.jupiter.params.provider.Arguments;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * One in-process run of {@code tls-close-probe}: its exit code and what it printed.
 */
record ProbeRun(int exitCode, String out, String err) {

    /** The probe's {@code --provider} and {@code --protocol} values: jdk and openssl, TLS 1.2 and 1.3. */
    static Stream<Arguments> providersAndProtocols() {
        return Stream.of(
                Arguments.of("jdk", "1.2"), Arguments.of("jdk", "1.3"),
                Arguments.of("openssl", "1.2"), Arguments.of("openssl", "1.3"));
    }

    /** Probes localhost:{@code port}, trusting {@code caFile}, with {@code more} options. */
    static ProbeRun against(Path caFile, int port, String provider, String protocol, String... more) {
        return of(Stream.concat(
                Stream.of("--cafile", caFile.toString(), "--provider", provider, "--protocol", protocol,
                        "localhost:" + port),
                Stream.of(more)).toArray(String[]::new));
    }

    static ProbeRun of(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exitCode;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            exitCode = TlsCloseProbe.run(o, e, args);
        }
        return new ProbeRun(exitCode, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    List<String> errLines() {
        return err.isEmpty() ? List.of() : Arrays.asList(err.split("\\R"));
    }

    @Override
    public String toString() {
        return "exit code " + exitCode + "\n--- stdout:\n" + out + "--- stderr:\n" + err;
    }
}
