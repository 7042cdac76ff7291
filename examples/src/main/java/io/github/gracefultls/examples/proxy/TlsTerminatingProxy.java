package io.github.gracefultls.examples.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseRelay;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.concurrent.GlobalEventExecutor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

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
 * <p>The structure is that of Netty's {@code HexDumpProxy}: the frontend (client) channel has auto-read off; once it
 * is active, the backend (upstream) channel is connected on the same event loop, also with auto-read off, and the two
 * are linked. Both have {@link ChannelOption#ALLOW_HALF_CLOSURE} on, so that a FIN ends one direction only.
 * {@link #start(Consumer, String...)} runs the proxy in-process, for tests.
 */
@Command(name = "tls-terminating-proxy", mixinStandardHelpOptions = true, sortOptions = false,
        description = "TLS-terminating reverse proxy that never turns a truncated stream into a clean one.")
public final class TlsTerminatingProxy implements Callable<Integer> {

    private static final System.Logger LOG = System.getLogger(TlsTerminatingProxy.class.getName());

    /** The TLS provider of both sides. */
    enum Provider {
        JDK(SslProvider.JDK), OPENSSL(SslProvider.OPENSSL);

        final SslProvider sslProvider;

        Provider(SslProvider sslProvider) {
            this.sslProvider = sslProvider;
        }
    }

    /** The Netty transport: epoll where available, else NIO. */
    enum Transport {
        AUTO, NIO, EPOLL
    }

    @Spec
    private CommandLine.Model.CommandSpec spec;

    @Option(names = "--listen", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:8443",
            description = "Address to accept TLS connections on (port 0: any free port). Default: ${DEFAULT-VALUE}.")
    private String listen;

    @Option(names = "--cert", paramLabel = "PEM", description = "Server certificate chain (PEM).")
    private Path cert;

    @Option(names = "--key", paramLabel = "PEM", description = "Server private key (PEM, PKCS#8).")
    private Path key;

    @Option(names = "--self-signed", description = "Generate a self-signed certificate for localhost at start.")
    private boolean selfSigned;

    @Option(names = "--provider", paramLabel = "jdk|openssl", defaultValue = "jdk",
            description = "TLS provider. Default: ${DEFAULT-VALUE}.")
    private Provider provider;

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
        System.exit(commandLine(new TlsTerminatingProxy()).execute(args));
    }

    /** Runs the proxy until the process is stopped. */
    @Override
    public Integer call() throws Exception {
        try (Running proxy = bind(null)) {
            LOG.log(System.Logger.Level.INFO, "listening on {0} ({1}, {2} {3}), upstream {4}{5}", proxy.address(),
                    proxy.transport, provider, protocols, upstream, upstreamTls ? " (TLS)" : "");
            proxy.server.closeFuture().sync();
        }
        return 0;
    }

    /**
     * Starts a proxy with these command-line arguments, in-process, and returns once it listens. Each connection's
     * outcome is logged, then given to {@code onOutcome} (if not {@code null}) on an event loop.
     *
     * @throws ParameterException if the arguments are invalid
     */
    public static Running start(Consumer<TlsCloseRelay.Outcome> onOutcome, String... args) throws Exception {
        TlsTerminatingProxy proxy = new TlsTerminatingProxy();
        commandLine(proxy).parseArgs(args);
        return proxy.bind(onOutcome);
    }

    private static CommandLine commandLine(TlsTerminatingProxy proxy) {
        return new CommandLine(proxy).setCaseInsensitiveEnumValuesAllowed(true);
    }

    private Running bind(Consumer<TlsCloseRelay.Outcome> onOutcome) throws Exception {
        SslContext serverContext = serverContext();
        SslContext upstreamContext = upstreamTls ? upstreamContext() : null;
        InetSocketAddress listenAddress = address(listen, "--listen");
        InetSocketAddress upstreamAddress = address(upstream, "--upstream");
        boolean epoll = transport == Transport.EPOLL || transport == Transport.AUTO && Epoll.isAvailable();
        if (epoll) {
            Epoll.ensureAvailability();
        }
        IoHandlerFactory io = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
        Class<? extends ServerChannel> serverChannel = epoll ? EpollServerSocketChannel.class
                : NioServerSocketChannel.class;
        Class<? extends Channel> socketChannel = epoll ? EpollSocketChannel.class : NioSocketChannel.class;
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(io);
        ChannelGroup channels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);

        Bootstrap backend = new Bootstrap()
                .channel(socketChannel)
                .option(ChannelOption.AUTO_READ, false)           // the relay reads after each write
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)   // a FIN ends one direction only
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 10_000)
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        channels.add(ch);
                        if (upstreamContext != null) {
                            ch.pipeline().addLast("ssl", upstreamContext.newHandler(ch.alloc(),
                                    upstreamAddress.getHostString(), upstreamAddress.getPort()));
                            ch.pipeline().addLast("tls-close", tlsCloseHandler());
                        }
                    }
                });
        try {
            Channel server = new ServerBootstrap()
                    .group(group)
                    .channel(serverChannel)
                    .childOption(ChannelOption.AUTO_READ, false)
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            channels.add(ch);
                            ch.pipeline().addLast("ssl", serverContext.newHandler(ch.alloc()));
                            ch.pipeline().addLast("tls-close", tlsCloseHandler());
                            ch.pipeline().addLast("connect", new ConnectUpstream(backend, upstreamAddress, onOutcome));
                        }
                    })
                    .bind(listenAddress).sync().channel();
            return new Running(group, server, channels, epoll ? "epoll" : "nio");
        } catch (Exception | Error e) {
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            throw e;
        }
    }

    /** On the frontend's first event: connects the backend on the same event loop, then links the two. */
    private static final class ConnectUpstream extends ChannelInboundHandlerAdapter {
        private final Bootstrap backend;
        private final InetSocketAddress upstream;
        private final Consumer<TlsCloseRelay.Outcome> onOutcome;

        ConnectUpstream(Bootstrap backend, InetSocketAddress upstream, Consumer<TlsCloseRelay.Outcome> onOutcome) {
            this.backend = backend;
            this.upstream = upstream;
            this.onOutcome = onOutcome;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            Channel frontend = ctx.channel();
            backend.clone(frontend.eventLoop()).connect(upstream).addListener((ChannelFuture f) -> {
                if (!f.isSuccess()) {
                    LOG.log(System.Logger.Level.WARNING, "{0}: cannot connect to {1}: {2}", frontend.remoteAddress(),
                            upstream, f.cause().toString());
                    reset(frontend); // the client must not take this for a clean, empty response
                    return;
                }
                Channel upstreamChannel = f.channel();
                if (!frontend.isActive()) {
                    // The client left while we connected: we cannot tell how, so the upstream gets a reset.
                    reset(upstreamChannel);
                    return;
                }
                TlsCloseRelay relay = TlsCloseRelay.link(frontend, upstreamChannel);
                Object client = frontend.remoteAddress();
                relay.closeFuture().addListener(r -> {
                    TlsCloseRelay.Outcome outcome = relay.closeFuture().getNow();
                    LOG.log(outcome.isClean() ? System.Logger.Level.INFO : System.Logger.Level.WARNING,
                            "{0}: {1}", client, outcome);
                    if (onOutcome != null) {
                        onOutcome.accept(outcome);
                    }
                });
            });
            ctx.pipeline().remove(this);
        }
    }

    /** Closes with a TCP reset, below TLS: no close_notify. */
    private static void reset(Channel ch) {
        ch.config().setOption(ChannelOption.SO_LINGER, 0);
        ChannelHandlerContext first = ch.pipeline().firstContext();
        if (first != null) {
            first.close();
        } else {
            ch.close();
        }
    }

    private GracefulTlsCloseHandler tlsCloseHandler() {
        return GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(closeNotifyReadTimeout)
                .halfCloseTimeout(halfCloseTimeout)
                .build();
    }

    private SslContext serverContext() throws Exception {
        SslContextBuilder builder;
        if (selfSigned) {
            Instant now = Instant.now();
            X509Bundle bundle = new CertificateBuilder()
                    .subject("CN=localhost")
                    .addSanDnsName("localhost")
                    .addSanIpAddress("127.0.0.1")
                    .setIsCertificateAuthority(true) // its own root, as pkitesting wants of a self-signed one
                    .setKeyUsage(true, CertificateBuilder.KeyUsage.digitalSignature,
                            CertificateBuilder.KeyUsage.keyCertSign)
                    .addExtendedKeyUsageServerAuth()
                    .notBefore(now.minus(1, ChronoUnit.HOURS))
                    .notAfter(now.plus(30, ChronoUnit.DAYS))
                    .ecp256()
                    .buildSelfSigned();
            builder = SslContextBuilder.forServer(bundle.getKeyPair().getPrivate(), bundle.getCertificatePath());
        } else if (cert != null && key != null) {
            builder = SslContextBuilder.forServer(cert.toFile(), key.toFile());
        } else {
            throw new ParameterException(spec.commandLine(), "give --cert and --key, or --self-signed");
        }
        return builder.sslProvider(sslProvider()).protocols(protocols).build();
    }

    private SslContext upstreamContext() throws Exception {
        SslContextBuilder builder = SslContextBuilder.forClient().sslProvider(sslProvider());
        if (upstreamInsecure) {
            builder.trustManager(InsecureTrustManagerFactory.INSTANCE).endpointIdentificationAlgorithm(null);
        } else if (upstreamCa != null) {
            builder.trustManager(upstreamCa.toFile());
        }
        return builder.build();
    }

    private SslProvider sslProvider() {
        if (provider == Provider.OPENSSL && !OpenSsl.isAvailable()) {
            throw new IllegalStateException("--provider openssl: netty-tcnative is not usable",
                    OpenSsl.unavailabilityCause());
        }
        return provider.sslProvider;
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

    /** A running proxy. {@link #close()} stops it: the connections still open are closed at once. */
    public static final class Running implements AutoCloseable {
        private final EventLoopGroup group;
        private final Channel server;
        private final ChannelGroup channels;
        private final String transport;

        Running(EventLoopGroup group, Channel server, ChannelGroup channels, String transport) {
            this.group = group;
            this.server = server;
            this.channels = channels;
            this.transport = transport;
        }

        /** Returns the address the proxy listens on. */
        public InetSocketAddress address() {
            return (InetSocketAddress) server.localAddress();
        }

        /** Returns the port the proxy listens on. */
        public int port() {
            return address().getPort();
        }

        /** Returns the number of open channels, client and upstream connections together. */
        public int openChannels() {
            return channels.size();
        }

        @Override
        public void close() {
            server.close().syncUninterruptibly();
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    /** Converts {@code 250ms}, {@code 3s}, {@code 2m}, {@code 0} or an ISO-8601 duration ({@code PT3S}). */
    static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            String v = value.trim().toLowerCase(Locale.ROOT);
            if (v.startsWith("pt")) {
                return Duration.parse(v);
            }
            if (v.equals("0")) {
                return Duration.ZERO;
            }
            if (v.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
            }
            long n = Long.parseLong(v.substring(0, v.length() - 1));
            switch (v.charAt(v.length() - 1)) {
                case 's':
                    return Duration.ofSeconds(n);
                case 'm':
                    return Duration.ofMinutes(n);
                default:
                    throw new CommandLine.TypeConversionException(value + " (expected: 250ms, 3s, 2m or PT3S)");
            }
        }
    }
}
