package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseRelay;
import io.github.gracefultls.probe.DurationConverter;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

/**
 * A TLS-terminating reverse proxy: it accepts TLS connections, opens one connection to the upstream per client, in
 * plain TCP or in TLS, and relays bytes and closure between the two with {@link TlsCloseRelay}. A clean end on one
 * side (the client's {@code close_notify}, the upstream's FIN or {@code close_notify}) is passed on as a clean end; a
 * truncation or a reset is passed on as a reset, never as a {@code close_notify}. Each connection's outcome is logged
 * by {@link OutcomeLog}.
 *
 * <p>What it can and cannot tell: a TLS side that ends without {@code close_notify} is a truncation, and a plain
 * upstream's reset is one too; but a plain upstream's FIN is all a plain upstream ever sends at its end, so one that
 * is killed (its kernel sends the FIN) looks exactly like one that finished: it is passed on as a clean end.
 *
 * <pre>
 * ./mvnw -B -q -pl examples -am package -DskipTests
 * java -jar examples/target/tls-terminating-proxy.jar --listen 127.0.0.1:8443 --self-signed --upstream 127.0.0.1:8080
 * </pre>
 *
 * <p>Exit codes: 2 for a bad command line or a proxy that cannot start (a protocol the TLS provider will not
 * negotiate, an address in use), each told in one line; 1 for an unexpected error.
 *
 * <p>The structure is that of Netty's {@code HexDumpProxy}: this class reads the command line and binds;
 * {@link TlsTerminatingProxyInitializer} sets up each client's channel and {@link TlsTerminatingProxyFrontendHandler}
 * connects the upstream, set up by {@link TlsTerminatingProxyBackendInitializer}; {@link ProxySslContexts} builds the
 * TLS contexts.
 */
@Command(name = TlsTerminatingProxy.NAME, mixinStandardHelpOptions = true, sortOptions = false,
        usageHelpAutoWidth = true, versionProvider = TlsTerminatingProxy.Version.class,
        description = {
            "TLS-terminating reverse proxy: relays each client's TLS connection to the upstream, and each side's "
                    + "end to the other as the same kind of end.",
            "",
            "A TLS side that ends without close_notify, or a plain upstream that resets, is passed on as a "
                    + "truncation (a reset), never as a clean end. A plain upstream can only end with a FIN, and "
                    + "a killed one ends with a FIN too: that is passed on as a clean end (close_notify), since "
                    + "nothing tells it from a finished one. Use --upstream-tls where that matters."},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:stopped",
            "1:unexpected error",
            "2:bad arguments, or cannot start (protocol not enabled, address in use, unreadable PEM file)"})
public final class TlsTerminatingProxy implements Callable<Integer> {

    /** Stopped. */
    public static final int EXIT_OK = 0;
    /** An unexpected error. */
    public static final int EXIT_FAILED = 1;
    /** Bad arguments, or the proxy cannot start. */
    public static final int EXIT_USAGE = 2;

    static final String NAME = "tls-terminating-proxy";

    private static final System.Logger LOG = System.getLogger(TlsTerminatingProxy.class.getName());

    /** The Netty transport: epoll where available, else NIO. */
    enum Transport {
        AUTO, NIO, EPOLL
    }

    @Spec
    private CommandLine.Model.CommandSpec spec;

    @Option(names = "--listen", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:8443",
            description = "Address to accept TLS connections on. Default: ${DEFAULT-VALUE}.")
    private String listen;

    @Option(names = "--cert", paramLabel = "PEM", description = "Server certificate chain (PEM).")
    private Path cert;

    @Option(names = "--key", paramLabel = "PEM", description = "Server private key (PEM, PKCS#8).")
    private Path key;

    @Option(names = "--self-signed", description = "Generate a self-signed certificate for localhost at start.")
    private boolean selfSigned;

    @Option(names = "--provider", paramLabel = "jdk|openssl", defaultValue = "jdk",
            description = "TLS provider. Default: ${DEFAULT-VALUE}.")
    private SslProvider provider;

    @Option(names = "--protocols", paramLabel = "LIST", split = ",", defaultValue = "TLSv1.2,TLSv1.3",
            description = "TLS protocols offered to clients; each must be enabled in the TLS provider (the JDK "
                    + "disables TLSv1 and TLSv1.1). Default: ${DEFAULT-VALUE}.")
    private List<String> protocols;

    @Option(names = "--upstream", paramLabel = "HOST:PORT", required = true, description = "The upstream server.")
    private String upstream;

    @Option(names = "--upstream-tls", description = "Connect to the upstream in TLS.")
    private boolean upstreamTls;

    @Option(names = "--upstream-insecure", description = "TLS upstream: trust any certificate, any name.")
    private boolean upstreamInsecure;

    @Option(names = "--upstream-ca", paramLabel = "PEM", description = "TLS upstream: the CA certificates to trust.")
    private Path upstreamCa;

    @Option(names = "--close-notify-read-timeout", paramLabel = "DURATION", defaultValue = "3s",
            converter = DurationConverter.class,
            description = "How long a close waits for the peer's close_notify. Default: ${DEFAULT-VALUE}.")
    private Duration closeNotifyReadTimeout;

    @Option(names = "--half-close-timeout", paramLabel = "DURATION", defaultValue = "30s",
            converter = DurationConverter.class,
            description = "How long a side that we half-closed may take to end too (0: no limit). "
                    + "Default: ${DEFAULT-VALUE}.")
    private Duration halfCloseTimeout;

    @Option(names = "--transport", paramLabel = "auto|nio|epoll", defaultValue = "auto",
            description = "Netty transport. Default: ${DEFAULT-VALUE}.")
    private Transport transport;

    private final PrintStream err;

    private TlsTerminatingProxy(PrintStream err) {
        this.err = err;
    }

    public static void main(String[] args) {
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tT.%1$tL %4$s %5$s%6$s%n");
        }
        System.exit(run(System.out, System.err, args));
    }

    /**
     * Runs the proxy with these arguments until it stops, printing help and errors to {@code out} and {@code err},
     * and returns the exit code: {@value #EXIT_OK}, {@value #EXIT_FAILED} or {@value #EXIT_USAGE}.
     */
    public static int run(PrintStream out, PrintStream err, String... args) {
        TlsTerminatingProxy command = new TlsTerminatingProxy(err);
        CommandLine commandLine = new CommandLine(command).setCaseInsensitiveEnumValuesAllowed(true);
        commandLine.setOut(new PrintWriter(out, true));
        commandLine.setErr(new PrintWriter(err, true));
        commandLine.setParameterExceptionHandler((e, arguments) -> {
            err.println(NAME + ": " + oneLine(e.getMessage()) + " (see --help)");
            return EXIT_USAGE;
        });
        commandLine.setExecutionExceptionHandler((e, cl, parseResult) -> {
            err.println(NAME + ": unexpected error: " + oneLine(String.valueOf(e)));
            return EXIT_FAILED;
        });
        int exitCode = commandLine.execute(args);
        out.flush();
        err.flush();
        return exitCode;
    }

    /** Runs the proxy until the process is stopped; returns {@value #EXIT_USAGE} at once if it cannot start. */
    @Override
    public Integer call() throws Exception {
        InetSocketAddress listenAddress = address(listen, "--listen");
        InetSocketAddress upstreamAddress = address(upstream, "--upstream");
        if (!selfSigned && (cert == null || key == null)) {
            throw new ParameterException(spec.commandLine(), "give --cert and --key, or --self-signed");
        }
        try {
            ProxySslContexts.checkProtocols(provider, protocols);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--protocols: " + e.getMessage());
        }
        SslContext serverContext;
        SslContext upstreamContext;
        try {
            serverContext = selfSigned ? ProxySslContexts.selfSignedServer(provider, protocols)
                    : ProxySslContexts.server(cert, key, provider, protocols);
            upstreamContext = upstreamTls ? ProxySslContexts.upstream(provider, upstreamCa, upstreamInsecure) : null;
        } catch (Exception e) {
            err.println(NAME + ": cannot set up TLS: " + rootMessage(e));
            return EXIT_USAGE;
        }
        boolean epoll = transport == Transport.EPOLL || transport == Transport.AUTO && Epoll.isAvailable();
        if (epoll) {
            Epoll.ensureAvailability();
        }
        Supplier<GracefulTlsCloseHandler> tlsClose = () -> GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(closeNotifyReadTimeout)
                .halfCloseTimeout(halfCloseTimeout)
                .build();

        EventLoopGroup group = new MultiThreadIoEventLoopGroup(
                epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
        try {
            Bootstrap backend = new Bootstrap()
                    .channel(epoll ? EpollSocketChannel.class : NioSocketChannel.class)
                    .handler(new TlsTerminatingProxyBackendInitializer(upstreamContext, upstreamAddress, tlsClose));
            ChannelFuture bound = new ServerBootstrap()
                    .group(group)
                    .channel(epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class)
                    .childOption(ChannelOption.AUTO_READ, false)            // the relay reads after each write
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)    // a FIN ends one direction only
                    .childHandler(new TlsTerminatingProxyInitializer(serverContext, tlsClose, backend, upstreamAddress,
                            new OutcomeLog(LOG)))
                    .bind(listenAddress).await();
            if (!bound.isSuccess()) {
                err.println(NAME + ": cannot listen on " + listen + ": " + rootMessage(bound.cause()));
                return EXIT_USAGE;
            }
            Channel server = bound.channel();
            LOG.log(System.Logger.Level.INFO, "listening on {0} ({1}, {2} {3}), upstream {4}{5}",
                    server.localAddress(), epoll ? "epoll" : "nio", provider, protocols, upstream,
                    upstreamTls ? " (TLS)" : "");
            server.closeFuture().sync();
        } finally {
            group.shutdownGracefully();
        }
        return EXIT_OK;
    }

    /** The message of the innermost cause, without the prefix of Netty's native transports. */
    static String rootMessage(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = root.getMessage() == null ? root.toString() : root.getMessage();
        // epoll: "bind(..) failed with error(-98): Address already in use"
        return oneLine(message.replaceFirst("^\\w+\\(\\.\\.\\) failed( with error\\(-?\\d+\\))?: ", ""));
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*\\R\\s*", " ").trim();
    }

    private InetSocketAddress address(String hostPort, String option) {
        int colon = hostPort.lastIndexOf(':');
        try {
            if (colon > 0) {
                String host = hostPort.substring(0, colon).replace("[", "").replace("]", "");
                return new InetSocketAddress(host, Integer.parseInt(hostPort.substring(colon + 1)));
            }
        } catch (IllegalArgumentException e) {
            // reported below
        }
        throw new ParameterException(spec.commandLine(), option + ": " + hostPort + " (expected: HOST:PORT)");
    }

    /** The version from the jar's manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = TlsTerminatingProxy.class.getPackage().getImplementationVersion();
            return new String[] {NAME + " " + (v == null ? "(development build)" : v)};
        }
    }
}
