package io.github.gracefultls.probe;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ConnectTimeoutException;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.HttpResponseDecoder;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.NetUtil;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;

import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSession;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.channels.ClosedChannelException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Probes how a real TLS server closes: connects with {@link GracefulTlsCloseHandler} in the pipeline, then either
 * ends the session itself with {@code bye(SHUT_RDWR)} and sees whether the server answers {@code close_notify}, or
 * sends an HTTP/1.1 request with {@code Connection: close} and sees whether the server ends with {@code close_notify}
 * before its FIN or truncates, and whether that cut the response ({@code HttpTlsTruncationHandler} after the decoder).
 */
final class RemoteProbe {

    /** What to probe and how. {@code provider} and {@code protocol} may be null: JDK and the engine's default. */
    record Settings(String host, int port, SslProvider provider, String protocol, boolean insecure, Path caFile,
                    String httpPath, Duration timeout, boolean verbose) {
    }

    private final Settings settings;

    RemoteProbe(Settings settings) {
        this.settings = settings;
    }

    /**
     * Runs the probe.
     *
     * @throws ProbeException when the server cannot be resolved, reached or handshaken with
     */
    ProbeReport run() throws ProbeException, InterruptedException {
        ProbeReport report = new ProbeReport(hostAndPort(settings.host(), settings.port()));
        report.timeout = settings.timeout();
        InetAddress address = resolve(settings.host());
        report.address = hostAndPort(NetUtil.toAddressString(address), settings.port());
        SslProvider provider = settings.provider() == null ? SslProvider.JDK : settings.provider();
        SslContext sslContext = sslContext(provider);
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        Channel ch = null;
        try {
            long timeoutMillis = Math.max(1, settings.timeout().toMillis());
            GracefulTlsCloseHandler tlsClose = GracefulTlsCloseHandler.builder()
                    .closeNotifyFlushTimeout(settings.timeout())
                    .closeNotifyReadTimeout(settings.timeout())
                    .build();
            HttpBodyReader body = settings.httpPath() == null ? null : new HttpBodyReader();
            ResponseReader response = new ResponseReader(body != null);
            Bootstrap bootstrap = new Bootstrap()
                    .group(group)
                    .channel(NioSocketChannel.class)
                    .option(ChannelOption.ALLOW_HALF_CLOSURE, true) // a bare FIN is seen as TRUNCATED
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, timeoutMillis))
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            // The host name gives SNI and hostname verification (not sent as SNI for an IP).
                            SslHandler ssl = sslContext.newHandler(ch.alloc(), settings.host(), settings.port());
                            ssl.setHandshakeTimeoutMillis(timeoutMillis);
                            ch.pipeline().addLast("ssl", ssl);
                            ch.pipeline().addLast("tls-close", tlsClose);
                            if (body == null) {
                                ch.pipeline().addLast("app", response);
                            } else {
                                // The raw bytes are counted, then decoded: was the body cut?
                                ch.pipeline().addLast("response", response)
                                        .addLast("http", new HttpResponseDecoder())
                                        .addLast("http-tls-truncation", new HttpTlsTruncationHandler())
                                        .addLast("app", body);
                            }
                        }
                    });

            ChannelFuture connect = bootstrap.connect(new InetSocketAddress(address, settings.port()));
            ch = connect.channel();
            if (!connect.await(timeoutMillis + 1000)) {
                throw new ProbeException("cannot connect to " + report.address + ": timed out after "
                        + Durations.format(settings.timeout()));
            }
            if (!connect.isSuccess()) {
                throw new ProbeException("cannot connect to " + report.address + ": "
                        + connectFailure(connect.cause()), connect.cause());
            }
            SslHandler ssl = ch.pipeline().get(SslHandler.class);
            Future<Channel> handshake = ssl.handshakeFuture();
            if (!handshake.await(timeoutMillis + 1000) || !handshake.isSuccess()) {
                Throwable cause = handshake.cause();
                throw new ProbeException("TLS handshake with " + report.target + " failed: "
                        + handshakeFailure(cause), cause);
            }
            SSLSession session = ssl.engine().getSession();
            report.provider = provider.name();
            report.protocol = session.getProtocol();
            report.cipher = session.getCipherSuite();
            report.verified = !settings.insecure();
            report.certificate = subject(session);

            if (settings.httpPath() == null) {
                byeAndWait(report, tlsClose, timeoutMillis);
            } else {
                requestAndWait(report, ch, tlsClose, response, timeoutMillis);
                body.awaitEnd(timeoutMillis);
                report.httpBody = body.body();
                report.httpFraming = body.framing();
                report.httpContentBytes = body.contentBytes();
                report.httpBodyProblem = body.problem();
            }
            return report;
        } finally {
            if (ch != null) {
                ch.close().awaitUninterruptibly(settings.timeout().toMillis() * 2 + 1000);
            }
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
            ReferenceCountUtil.release(sslContext);
        }
    }

    /** We end the session: bye(SHUT_RDWR), then the server's close_notify, or not. */
    private void byeAndWait(ProbeReport report, GracefulTlsCloseHandler tlsClose, long timeoutMillis)
            throws InterruptedException, ProbeException {
        report.closedBy = "bye(SHUT_RDWR)";
        Future<TlsCloseEvent> bye = tlsClose.bye(TlsCloseMode.SHUT_RDWR);
        if (!bye.await(timeoutMillis * 2 + 2000)) {
            throw new ProbeException("internal error: no TlsCloseEvent from bye(SHUT_RDWR)");
        }
        if (!bye.isSuccess()) {
            throw new ProbeException("bye(SHUT_RDWR) failed: " + bye.cause(), bye.cause());
        }
        report.event = bye.getNow();
        report.time = report.event.elapsed();
    }

    /** The server ends the session: after the response to our "Connection: close" request, with or without
     *  close_notify. If it does not within the timeout, we close. */
    private void requestAndWait(ProbeReport report, Channel ch, GracefulTlsCloseHandler tlsClose,
                                ResponseReader response, long timeoutMillis) throws InterruptedException {
        report.httpPath = settings.httpPath();
        String request = "GET " + settings.httpPath() + " HTTP/1.1\r\n"
                + "Host: " + hostHeader(settings.host(), settings.port()) + "\r\n"
                + "User-Agent: tls-close-probe\r\n"
                + "Accept: */*\r\n"
                + "Connection: close\r\n"
                + "\r\n";
        long start = System.nanoTime();
        Future<TlsCloseEvent> outcome = tlsClose.closeFuture();
        ch.writeAndFlush(Unpooled.copiedBuffer(request, StandardCharsets.US_ASCII));
        report.serverClosed = outcome.await(timeoutMillis);
        if (!report.serverClosed) {
            // The server kept the connection open despite "Connection: close": end it ourselves.
            ch.close();
            outcome.await(timeoutMillis * 2 + 2000);
        }
        report.httpStatus = response.statusLine();
        report.httpBytes = response.bytes();
        if (outcome.isSuccess()) {
            report.event = outcome.getNow();
            report.closedBy = report.serverClosed ? "the server, after the response"
                    : "close() after waiting " + Durations.format(settings.timeout());
            report.time = report.serverClosed ? Duration.ofNanos(Math.max(0, response.eventNanos() - start))
                    : report.event.elapsed();
        }
    }

    private SslContext sslContext(SslProvider provider) throws ProbeException {
        if (provider == SslProvider.OPENSSL && !OpenSsl.isAvailable()) {
            throw new ProbeException("the OPENSSL provider is not available here: " + OpenSsl.unavailabilityCause(),
                    OpenSsl.unavailabilityCause());
        }
        Path ca = settings.caFile();
        if (ca != null && !Files.isReadable(ca)) {
            throw new ProbeException("cannot read --cafile " + ca);
        }
        try {
            SslContextBuilder builder = SslContextBuilder.forClient().sslProvider(provider);
            if (settings.protocol() != null) {
                builder.protocols(settings.protocol());
            }
            if (settings.insecure()) {
                builder.trustManager(InsecureTrustManagerFactory.INSTANCE).endpointIdentificationAlgorithm(null);
            } else {
                builder.endpointIdentificationAlgorithm("HTTPS");
                if (ca != null) {
                    builder.trustManager(ca.toFile());
                }
            }
            return builder.build();
        } catch (SSLException | IllegalArgumentException e) {
            String what = settings.caFile() != null ? "cannot use --cafile " + settings.caFile() + ": "
                    : "cannot set up TLS: ";
            throw new ProbeException(what + rootMessage(e), e);
        }
    }

    private static InetAddress resolve(String host) throws ProbeException {
        try {
            return InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new ProbeException("cannot resolve host '" + host + "'", e);
        }
    }

    private String connectFailure(Throwable cause) {
        if (cause instanceof ConnectTimeoutException) {
            return "timed out after " + Durations.format(settings.timeout());
        }
        if (cause instanceof ConnectException) {
            String m = String.valueOf(cause.getMessage());
            int at = m.indexOf(": /"); // Netty appends the address, which the line already names
            return at > 0 ? m.substring(0, at) : m;
        }
        return rootMessage(cause);
    }

    private String handshakeFailure(Throwable cause) {
        if (cause == null) {
            return "timed out after " + Durations.format(settings.timeout());
        }
        if (cause instanceof SslHandshakeTimeoutException) {
            return "timed out after " + Durations.format(settings.timeout());
        }
        if (find(cause, NotSslRecordException.class) != null) {
            return "the server did not answer with TLS";
        }
        Throwable certificate = find(cause, CertificateException.class);
        if (certificate == null) {
            certificate = find(cause, CertPathBuilderException.class);
        }
        if (certificate == null) {
            certificate = find(cause, CertPathValidatorException.class);
        }
        if (certificate != null) {
            return "the server's certificate is not trusted: " + rootMessage(certificate)
                    + " (--cafile PEM to trust its CA, --insecure to skip verification)";
        }
        String version = protocolVersionHint(cause);
        if (version != null) {
            return rootMessage(cause) + " (" + version + ")";
        }
        if (cause instanceof ClosedChannelException || find(cause, ClosedChannelException.class) != null) {
            return "the server closed the connection";
        }
        if (cause instanceof IOException && !(cause instanceof SSLException)) {
            return "connection lost: " + rootMessage(cause);
        }
        return rootMessage(cause);
    }

    /**
     * When the handshake failed on the protocol version (the server's {@code protocol_version} alert, or the engine
     * finding no version in common), what to try instead; else null.
     */
    private String protocolVersionHint(Throwable cause) {
        boolean versionMismatch = false;
        for (Throwable c = cause; c != null; c = c.getCause() == c ? null : c.getCause()) {
            String m = String.valueOf(c.getMessage()).toLowerCase(Locale.ROOT);
            if (m.contains("protocol_version") || m.contains("unsupported_protocol")
                    || m.contains("no appropriate protocol")) {
                versionMismatch = true;
            }
        }
        if (!versionMismatch) {
            return null;
        }
        if ("TLSv1.3".equals(settings.protocol())) {
            return "the server does not support TLSv1.3; try --protocol 1.2";
        }
        if ("TLSv1.2".equals(settings.protocol())) {
            return "the server does not support TLSv1.2; try --protocol 1.3";
        }
        return "the server supports neither TLSv1.2 nor TLSv1.3";
    }

    private static String subject(SSLSession session) {
        try {
            Certificate[] chain = session.getPeerCertificates();
            if (chain.length > 0 && chain[0] instanceof X509Certificate) {
                return ((X509Certificate) chain[0]).getSubjectX500Principal().getName();
            }
        } catch (IOException e) {
            // SSLPeerUnverifiedException: no certificate
        }
        return "-";
    }

    private static <T extends Throwable> T find(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (type.isInstance(c)) {
                return type.cast(c);
            }
        }
        return null;
    }

    /** The message of the innermost cause that has one, on one line. */
    static String rootMessage(Throwable t) {
        String message = null;
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c.getMessage() != null && !c.getMessage().isBlank()) {
                message = c.getMessage();
            }
        }
        if (message == null) {
            message = t.getClass().getSimpleName();
        }
        return message.replaceAll("\\s*[\\r\\n]+\\s*", " ").trim();
    }

    static String hostAndPort(String host, int port) {
        return (NetUtil.isValidIpV6Address(host) ? "[" + host + "]" : host) + ":" + port;
    }

    private static String hostHeader(String host, int port) {
        String h = NetUtil.isValidIpV6Address(host) ? "[" + host + "]" : host;
        return port == 443 ? h : h + ":" + port;
    }

    /**
     * Reads the HTTP response: its status line and its size. Everything is released, or, with {@code passOn}, passed
     * on to the HTTP decoder.
     */
    static final class ResponseReader extends ChannelInboundHandlerAdapter {
        private final boolean passOn;
        private final StringBuilder statusLine = new StringBuilder();
        private volatile String status;
        private volatile long bytes;
        private volatile long eventNanos;

        ResponseReader(boolean passOn) {
            this.passOn = passOn;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            boolean passed = false;
            try {
                if (msg instanceof ByteBuf) {
                    ByteBuf buf = (ByteBuf) msg;
                    bytes += buf.readableBytes();
                    for (int i = buf.readerIndex(); status == null && i < buf.writerIndex(); i++) {
                        char c = (char) (buf.getByte(i) & 0xff);
                        if (c == '\n' || statusLine.length() >= 200) {
                            status = statusLine.toString().trim();
                        } else if (c != '\r') {
                            statusLine.append(c);
                        }
                    }
                }
                if (passOn) {
                    passed = true;
                    ctx.fireChannelRead(msg);
                }
            } finally {
                if (!passed) {
                    ReferenceCountUtil.release(msg);
                }
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                // Fired before the closeFuture() completes, so it is set when a waiter wakes up.
                eventNanos = System.nanoTime();
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (passOn) {
                ctx.fireExceptionCaught(cause);
            } else {
                ctx.close();
            }
        }

        /** When the TlsCloseEvent passed, on the System.nanoTime() clock. */
        long eventNanos() {
            return eventNanos;
        }

        String statusLine() {
            String s = status;
            return s != null ? s : bytes > 0 ? statusLine.toString().trim() : null;
        }

        long bytes() {
            return bytes;
        }
    }
}
