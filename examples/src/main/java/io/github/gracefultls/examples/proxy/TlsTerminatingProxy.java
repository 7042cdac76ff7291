package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseRelay;
import io.github.gracefultls.probe.DurationConverter;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
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
 * truncation or a reset is passed on as a reset, never as a {@code close_notify}. Each connection's outcome is logged.
 *
 * <pre>
 * ./mvnw -B -q -pl examples dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
 * java -cp "examples/target/classes:$(cat examples/target/classpath.txt)" \
 *     io.github.gracefultls.examples.proxy.TlsTerminatingProxy \
 *     --listen 127.0.0.1:8443 --self-signed --upstream 127.0.0.1:8080
 * </pre>
 *
 * <p>The structure is that of Netty's {@code HexDumpProxy}: this class reads the command line and binds;
 * {@link TlsTerminatingProxyInitializer} sets up each client's channel and {@link TlsTerminatingProxyFrontendHandler}
 * connects the upstream, set up by {@link TlsTerminatingProxyBackendInitializer}; {@link ProxySslContexts} builds the
 * TLS contexts.
 */
@Command(name = "tls-terminating-proxy", mixinStandardHelpOptions = true, sortOptions = false,
        description = "TLS-terminating reverse proxy that never turns a truncated stream into a clean one.")
public final class TlsTerminatingProxy implements Callable<Integer> {

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
            description = "TLS protocols offered to clients. Default: ${DEFAULT-VALUE}.")
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

    public static void main(String[] args) {
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tT.%1$tL %4$s %5$s%6$s%n");
        }
        System.exit(new CommandLine(new TlsTerminatingProxy()).setCaseInsensitiveEnumValuesAllowed(true).execute(args));
    }

    /** Runs the proxy until the process is stopped. */
    @Override
    public Integer call() throws Exception {
        InetSocketAddress listenAddress = address(listen, "--listen");
        InetSocketAddress upstreamAddress = address(upstream, "--upstream");
        SslContext serverContext;
        if (selfSigned) {
            serverContext = ProxySslContexts.selfSignedServer(provider, protocols);
        } else if (cert != null && key != null) {
            serverContext = ProxySslContexts.server(cert, key, provider, protocols);
        } else {
            throw new ParameterException(spec.commandLine(), "give --cert and --key, or --self-signed");
        }
        SslContext upstreamContext = upstreamTls ? ProxySslContexts.upstream(provider, upstreamCa, upstreamInsecure)
                : null;
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
            Channel server = new ServerBootstrap()
                    .group(group)
                    .channel(epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class)
                    .childOption(ChannelOption.AUTO_READ, false)            // the relay reads after each write
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)    // a FIN ends one direction only
                    .childHandler(new TlsTerminatingProxyInitializer(serverContext, tlsClose, backend, upstreamAddress,
                            (client, outcome) -> LOG.log(outcome.isClean() ? System.Logger.Level.INFO
                                    : System.Logger.Level.WARNING, "{0}: {1}", client, outcome)))
                    .bind(listenAddress).sync().channel();
            LOG.log(System.Logger.Level.INFO, "listening on {0} ({1}, {2} {3}), upstream {4}{5}",
                    server.localAddress(), epoll ? "epoll" : "nio", provider, protocols, upstream,
                    upstreamTls ? " (TLS)" : "");
            server.closeFuture().sync();
        } finally {
            group.shutdownGracefully();
        }
        return 0;
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
}
