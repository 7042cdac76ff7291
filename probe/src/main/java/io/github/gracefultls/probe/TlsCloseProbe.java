package io.github.gracefultls.probe;

import io.netty.handler.ssl.SslProvider;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code tls-close-probe}: with no argument, runs the embedded demo of {@code GracefulTlsCloseHandler}; with
 * {@code HOST:PORT}, probes how that TLS server closes.
 *
 * <p>{@link #run(PrintStream, PrintStream, String...)} does everything but {@link System#exit(int)}, for tests.
 */
@Command(
        name = "tls-close-probe",
        mixinStandardHelpOptions = true,
        versionProvider = TlsCloseProbe.Version.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        description = {
            "Shows how TLS connections end: with close_notify (clean), a timeout, or a truncation.",
            "",
            "Without HOST:PORT, runs the embedded demo: GracefulTlsCloseHandler against TLS servers on loopback, "
                    + "for the JDK and OPENSSL providers and TLSv1.2 and TLSv1.3.",
            "",
            "With HOST:PORT, connects to the server (SNI, certificate verified), then ends the TLS session with "
                    + "bye(SHUT_RDWR) and reports whether and when the server answered close_notify; or, with "
                    + "--http, sends a GET with \"Connection: close\" and reports whether the server sent "
                    + "close_notify before its FIN or truncated."},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:clean closure (the demo: every case as the spec says)",
            "1:not clean: timed out, truncated, failed",
            "2:could not connect or handshake, or bad arguments"})
public final class TlsCloseProbe implements Callable<Integer> {

    /** Clean closure; the demo: every case as the spec says. */
    public static final int EXIT_CLEAN = 0;
    /** Not clean: timed out, truncated, failed. */
    public static final int EXIT_NOT_CLEAN = 1;
    /** Could not connect or handshake, or bad arguments. */
    public static final int EXIT_ERROR = 2;

    private static final String NAME = "tls-close-probe";
    private static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(3);

    @Parameters(arity = "0..1", paramLabel = "HOST:PORT",
            description = "the TLS server to probe (port 443 if omitted; IPv6 as [::1]:443)")
    private String target;

    @Option(names = "--http", paramLabel = "PATH",
            description = "send GET PATH (Host, Connection: close), read the response, and report its size (in "
                    + "bytes, headers included) and how the server ends the connection; PATH comes first: "
                    + "--http / HOST:PORT")
    private String httpPath;

    @Option(names = "--insecure", description = "do not verify the server's certificate")
    private boolean insecure;

    @Option(names = "--cafile", paramLabel = "PEM",
            description = "trust the CA certificates in this PEM file instead of the JDK's")
    private Path caFile;

    @Option(names = "--protocol", paramLabel = "1.2|1.3", converter = ProtocolConverter.class,
            description = "force TLSv1.2 or TLSv1.3 (the demo: run only that one)")
    private String protocol;

    @Option(names = "--provider", paramLabel = "jdk|openssl", converter = ProviderConverter.class,
            description = "the TLS engine: jdk (default) or openssl (BoringSSL) (the demo: run only that one)")
    private SslProvider provider;

    @Option(names = "--timeout", paramLabel = "DURATION", converter = PositiveDurationConverter.class,
            description = "bound on connect, handshake, and the wait for the server's close_notify, e.g. 3s, "
                    + "500ms (default: 3s)")
    private Duration timeout;

    @Option(names = "--json", description = "print one JSON object instead of text")
    private boolean json;

    @Option(names = {"-v", "--verbose"}, description = "print the TlsCloseEvent, debug log, and stack traces")
    private boolean verbose;

    private final PrintStream out;
    private final PrintStream err;

    private TlsCloseProbe(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /**
     * Runs the tool and exits with its exit code.
     */
    public static void main(String[] args) {
        System.exit(run(System.out, System.err, args));
    }

    /**
     * Runs the tool with these arguments, printing to {@code out} and {@code err}, and returns the exit code:
     * {@value #EXIT_CLEAN}, {@value #EXIT_NOT_CLEAN} or {@value #EXIT_ERROR}.
     */
    public static int run(PrintStream out, PrintStream err, String... args) {
        TlsCloseProbe command = new TlsCloseProbe(out, err);
        CommandLine commandLine = new CommandLine(command);
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        commandLine.setParameterExceptionHandler((e, arguments) -> {
            err.println(NAME + ": " + oneLine(e.getMessage()) + " (see --help)");
            return EXIT_ERROR;
        });
        commandLine.setExecutionExceptionHandler((e, cl, parseResult) -> {
            err.println(NAME + ": internal error: " + oneLine(String.valueOf(e)));
            if (command.verbose) {
                e.printStackTrace(err);
            }
            return EXIT_ERROR;
        });
        int exitCode = commandLine.execute(args);
        out.flush();
        err.flush();
        return exitCode;
    }

    @Override
    public Integer call() throws InterruptedException {
        ProbeLogging.configure(verbose, err);
        if (target == null) {
            return demo();
        }
        try {
            RemoteProbe.Settings settings = settings();
            ProbeReport report = new RemoteProbe(settings).run();
            if (json) {
                out.println(Json.write(report.toJson()));
            } else {
                report.print(out, verbose);
            }
            return report.exitCode();
        } catch (ProbeException e) {
            err.println(NAME + ": " + oneLine(e.getMessage()));
            if (verbose && e.getCause() != null) {
                e.getCause().printStackTrace(err);
            }
            if (json) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("target", target);
                m.put("error", oneLine(e.getMessage()));
                m.put("exitCode", EXIT_ERROR);
                out.println(Json.write(m));
            }
            return EXIT_ERROR;
        }
    }

    private int demo() {
        if (httpPath != null && !httpPath.startsWith("/")) {
            // "--http example.com:443": picocli took the target as the path, and nothing is left for HOST:PORT.
            err.println(NAME + ": --http needs a PATH, then HOST:PORT (--http / " + httpPath + "); '" + httpPath
                    + "' was read as the path, and HOST:PORT is missing");
            return EXIT_ERROR;
        }
        for (Object[] option : new Object[][] {
                {"--http", httpPath}, {"--insecure", insecure ? true : null}, {"--cafile", caFile},
                {"--timeout", timeout}}) {
            if (option[1] != null) {
                err.println(NAME + ": " + option[0] + " needs HOST:PORT; the demo takes only --provider, "
                        + "--protocol, --json and --verbose (see --help)");
                return EXIT_ERROR;
            }
        }
        List<SslProvider> providers = provider == null ? List.of(SslProvider.JDK, SslProvider.OPENSSL)
                : List.of(provider);
        List<String> protocols = protocol == null ? List.of("TLSv1.2", "TLSv1.3") : List.of(protocol);
        try {
            return new Demo(out, json, verbose, providers, protocols).run();
        } catch (Exception e) {
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            err.println(NAME + ": the demo could not run: " + RemoteProbe.rootMessage(e));
            if (verbose) {
                e.printStackTrace(err);
            }
            return EXIT_NOT_CLEAN;
        }
    }

    private RemoteProbe.Settings settings() throws ProbeException {
        if (insecure && caFile != null) {
            throw new ProbeException("--insecure and --cafile exclude each other");
        }
        if (httpPath != null && (!httpPath.startsWith("/") || !httpPath.chars().allMatch(c -> c > 0x20 && c < 0x7f))) {
            throw new ProbeException("--http " + httpPath + ": expected a path such as / or /index.html, "
                    + "without spaces");
        }
        String host;
        String port;
        if (target.startsWith("[")) {
            int close = target.indexOf(']');
            if (close < 0 || (close + 1 < target.length() && target.charAt(close + 1) != ':')) {
                throw new ProbeException("bad target '" + target + "': expected HOST:PORT, e.g. [::1]:443");
            }
            host = target.substring(1, close);
            port = close + 1 < target.length() ? target.substring(close + 2) : "443";
        } else {
            int colon = target.lastIndexOf(':');
            if (colon >= 0 && target.indexOf(':') != colon) {
                throw new ProbeException("bad target '" + target + "': put an IPv6 address in brackets, "
                        + "e.g. [::1]:443");
            }
            host = colon < 0 ? target : target.substring(0, colon);
            port = colon < 0 ? "443" : target.substring(colon + 1);
        }
        if (host.isEmpty()) {
            throw new ProbeException("bad target '" + target + "': no host (expected HOST:PORT)");
        }
        int portNumber;
        try {
            portNumber = Integer.parseInt(port);
        } catch (NumberFormatException e) {
            portNumber = -1;
        }
        if (portNumber < 1 || portNumber > 65535) {
            throw new ProbeException("bad target '" + target + "': port '" + port + "' is not in 1-65535");
        }
        return new RemoteProbe.Settings(host, portNumber, provider, protocol, insecure, caFile, httpPath,
                timeout == null ? DEFAULT_TIMEOUT : timeout, verbose);
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }

    /** {@code 1.2}, {@code 1.3} (or {@code TLSv1.2}, {@code TLSv1.3}) to the JSSE protocol name. */
    static final class ProtocolConverter implements CommandLine.ITypeConverter<String> {
        @Override
        public String convert(String value) {
            switch (value.toLowerCase(Locale.ROOT)) {
                case "1.2":
                case "tlsv1.2":
                    return "TLSv1.2";
                case "1.3":
                case "tlsv1.3":
                    return "TLSv1.3";
                default:
                    throw new CommandLine.TypeConversionException(
                            "'" + value + "' is not a TLS version (expected 1.2 or 1.3)");
            }
        }
    }

    /** {@code jdk} or {@code openssl}, in any case. */
    static final class ProviderConverter implements CommandLine.ITypeConverter<SslProvider> {
        @Override
        public SslProvider convert(String value) {
            switch (value.toLowerCase(Locale.ROOT)) {
                case "jdk":
                    return SslProvider.JDK;
                case "openssl":
                    return SslProvider.OPENSSL;
                default:
                    throw new CommandLine.TypeConversionException(
                            "'" + value + "' is not a provider (expected jdk or openssl)");
            }
        }
    }

    /** A positive duration such as {@code 3s} or {@code 500ms}. */
    static final class PositiveDurationConverter extends DurationConverter {
        @Override
        public Duration convert(String value) {
            Duration d = super.convert(value);
            if (d.isZero()) {
                throw new CommandLine.TypeConversionException("'" + value + "' must be positive");
            }
            return d;
        }
    }

    /** The version from the jar's manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = TlsCloseProbe.class.getPackage().getImplementationVersion();
            return new String[] {NAME + " " + (v == null ? "(development build)" : v)};
        }
    }
}
