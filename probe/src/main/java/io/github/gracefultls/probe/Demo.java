package io.github.gracefultls.probe;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.LineBasedFrameDecoder;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The embedded demo: {@link GracefulTlsCloseHandler} on the client against {@link DemoServer}s on loopback, for each
 * provider and protocol, in every way a TLS connection can end. Prints a table and a verdict; the exit code says
 * whether every closure ended as the spec says.
 */
final class Demo {

    /** How long the client waits for a silent peer's {@code close_notify}. */
    static final Duration SILENT_PEER_TIMEOUT = Duration.ofMillis(200);
    /** Bound on every step of a case that should take milliseconds. */
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(3);
    private static final String PLAINTEXT_LINE = "plaintext after TLS";

    /** The closures the demo runs, with the server each needs and the status the spec promises. */
    enum Case {
        CLOSE("close()", DemoServer.Behaviour.ANSWER, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED),
        SHUTDOWN_OUTPUT("shutdownOutput()", DemoServer.Behaviour.ANSWER, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED),
        PEER_TRUNCATES("peer truncates", DemoServer.Behaviour.TRUNCATE, TlsCloseStatus.TRUNCATED),
        PEER_SILENT("peer never answers", DemoServer.Behaviour.SILENT, TlsCloseStatus.TIMED_OUT),
        REUSE("bye() + plaintext", DemoServer.Behaviour.REUSE, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);

        final String label;
        final DemoServer.Behaviour server;
        final TlsCloseStatus expected;

        Case(String label, DemoServer.Behaviour server, TlsCloseStatus expected) {
            this.label = label;
            this.server = server;
            this.expected = expected;
        }
    }

    /** One line of the table. {@code event} is null when the case did not get that far. */
    record Row(Case closure, SslProvider provider, String protocol, TlsCloseEvent event, boolean ok, String detail) {
    }

    private final PrintStream out;
    private final boolean json;
    private final boolean verbose;
    private final List<SslProvider> providers;
    private final List<String> protocols;

    Demo(PrintStream out, boolean json, boolean verbose, List<SslProvider> providers, List<String> protocols) {
        this.out = out;
        this.json = json;
        this.verbose = verbose;
        this.providers = providers;
        this.protocols = protocols;
    }

    /**
     * Runs every case, prints the results, and returns {@code 0} if all ended as expected, else {@code 1}.
     */
    int run() throws Exception {
        DemoCertificate certificate = DemoCertificate.generate();
        List<String> notes = new ArrayList<>();
        List<Row> rows = new ArrayList<>();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        List<AutoCloseable> resources = new ArrayList<>();
        try {
            for (SslProvider provider : providers) {
                if (provider == SslProvider.OPENSSL && !OpenSsl.isAvailable()) {
                    notes.add("OPENSSL skipped: not available here (" + OpenSsl.unavailabilityCause() + ")");
                    continue;
                }
                SslContext serverContext = SslContextBuilder
                        .forServer(certificate.privateKey(), certificate.certificate())
                        .sslProvider(provider)
                        .protocols("TLSv1.3", "TLSv1.2")
                        .build();
                resources.add(() -> ReferenceCountUtil.release(serverContext));
                Map<DemoServer.Behaviour, DemoServer> servers = new EnumMap<>(DemoServer.Behaviour.class);
                for (Case c : Case.values()) {
                    if (!servers.containsKey(c.server)) {
                        DemoServer server = DemoServer.start(group, serverContext, c.server);
                        servers.put(c.server, server);
                        resources.add(server);
                    }
                }
                for (String protocol : protocols) {
                    SslContext clientContext = SslContextBuilder.forClient()
                            .sslProvider(provider)
                            .protocols(protocol)
                            .trustManager(certificate.certificate())
                            .build();
                    try {
                        for (Case c : Case.values()) {
                            rows.add(runCase(group, c, provider, protocol, clientContext, servers.get(c.server)));
                        }
                    } finally {
                        ReferenceCountUtil.release(clientContext);
                    }
                }
            }
        } finally {
            for (int i = resources.size() - 1; i >= 0; i--) {
                resources.get(i).close();
            }
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(3, TimeUnit.SECONDS);
        }
        long failed = rows.stream().filter(r -> !r.ok()).count();
        String verdict = rows.isEmpty() ? "FAILED: no case could run"
                : failed == 0 ? "OK: all " + rows.size() + " closures ended as the spec says"
                : "FAILED: " + failed + " of " + rows.size() + " closures did not end as the spec says";
        if (json) {
            printJson(rows, notes, verdict, failed == 0 && !rows.isEmpty());
        } else {
            printTable(rows, notes, verdict);
        }
        return failed == 0 && !rows.isEmpty() ? 0 : 1;
    }

    private Row runCase(EventLoopGroup group, Case c, SslProvider provider, String protocol,
                        SslContext clientContext, DemoServer server) throws InterruptedException {
        GracefulTlsCloseHandler tlsClose = GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(c == Case.PEER_SILENT ? SILENT_PEER_TIMEOUT : STEP_TIMEOUT)
                .build();
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Bootstrap bootstrap = new Bootstrap()
                .group(group)
                .channel(NioSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true) // a bare FIN is seen as TRUNCATED
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) STEP_TIMEOUT.toMillis())
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast("ssl",
                                clientContext.newHandler(ch.alloc(), DemoCertificate.HOSTNAME, server.port()));
                        ch.pipeline().addLast("tls-close", tlsClose);
                        ch.pipeline().addLast("lines", new LineBasedFrameDecoder(1024));
                        ch.pipeline().addLast("app", new LineCollector(lines));
                    }
                });
        ChannelFuture connect = bootstrap.connect(server.address());
        Channel ch = connect.channel();
        try {
            if (!connect.await(STEP_TIMEOUT.toMillis()) || !connect.isSuccess()) {
                return failed(c, provider, protocol, "could not connect: " + connect.cause());
            }
            Future<Channel> handshake = ch.pipeline().get(SslHandler.class).handshakeFuture();
            if (!handshake.await(STEP_TIMEOUT.toMillis()) || !handshake.isSuccess()) {
                return failed(c, provider, protocol, "handshake failed: " + handshake.cause());
            }
            String negotiated = ch.pipeline().get(SslHandler.class).engine().getSession().getProtocol();
            if (!protocol.equals(negotiated)) {
                return failed(c, provider, protocol, "negotiated " + negotiated);
            }

            Future<TlsCloseEvent> closure;
            switch (c) {
                case SHUTDOWN_OUTPUT:
                    closure = tlsClose.shutdownOutput();
                    break;
                case REUSE:
                    closure = tlsClose.bye(TlsCloseMode.SHUT_RDWR);
                    break;
                default:
                    ch.close();
                    closure = tlsClose.closeFuture();
                    break;
            }
            if (!closure.await(STEP_TIMEOUT.toMillis() * 2)) {
                return failed(c, provider, protocol, "no TlsCloseEvent within " + Durations.format(STEP_TIMEOUT
                        .multipliedBy(2)));
            }
            if (!closure.isSuccess()) {
                return failed(c, provider, protocol, "closure failed: " + closure.cause());
            }
            TlsCloseEvent event = closure.getNow();
            List<String> problems = new ArrayList<>();
            if (event.status() != c.expected) {
                problems.add("expected " + c.expected);
            }
            if (event.initiator() != TlsCloseInitiator.LOCAL) {
                problems.add("expected initiator LOCAL");
            }
            String detail = detail(c, event);
            if (c == Case.REUSE && event.isClean()) {
                String echoed = exchangePlaintext(ch, lines);
                if (echoed == null) {
                    detail = "plaintext echoed";
                } else {
                    problems.add(echoed);
                }
            }
            if (verbose) {
                detail = detail.isEmpty() ? event.toString() : detail + "; " + event;
            }
            if (!problems.isEmpty()) {
                String cause = event.cause() == null ? "" : " (" + event.cause() + ")";
                return new Row(c, provider, protocol, event, false, String.join(", ", problems) + cause);
            }
            return new Row(c, provider, protocol, event, true, detail);
        } finally {
            ch.close().awaitUninterruptibly(STEP_TIMEOUT.toMillis() * 2);
        }
    }

    /** Sends a line over the reused transport, expects it echoed; returns null, or what went wrong. */
    private static String exchangePlaintext(Channel ch, BlockingQueue<String> lines) throws InterruptedException {
        // The bye() future completes while the event loop is still handing the transport back (the SslHandler
        // leaves right after the TlsCloseEvent): let that task finish before looking at the pipeline.
        ch.eventLoop().submit(() -> { }).await(STEP_TIMEOUT.toMillis());
        if (ch.pipeline().get(SslHandler.class) != null) {
            return "the SslHandler is still in the pipeline after a clean bye()";
        }
        ChannelFuture write = ch.writeAndFlush(
                Unpooled.copiedBuffer(PLAINTEXT_LINE + "\n", StandardCharsets.US_ASCII));
        if (!write.await(STEP_TIMEOUT.toMillis()) || !write.isSuccess()) {
            return "plaintext write failed: " + write.cause();
        }
        String echoed = lines.poll(STEP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        if (!PLAINTEXT_LINE.equals(echoed)) {
            return "plaintext not echoed (got " + echoed + ")";
        }
        return null;
    }

    private static String detail(Case c, TlsCloseEvent event) {
        switch (event.status()) {
            case TRUNCATED:
                if (event.cause() instanceof TlsTruncationException) {
                    TlsTruncationException t = (TlsTruncationException) event.cause();
                    return t.isInsideRecord() ? "transport ended inside a record"
                            : t.undecodedBytes() == 0 ? "FIN at a record boundary" : "transport ended";
                }
                return "transport ended";
            case TIMED_OUT:
                return c == Case.PEER_SILENT ? "no close_notify in " + Durations.format(SILENT_PEER_TIMEOUT) : "";
            default:
                return "";
        }
    }

    private static Row failed(Case c, SslProvider provider, String protocol, String why) {
        return new Row(c, provider, protocol, null, false, why);
    }

    private void printTable(List<Row> rows, List<String> notes, String verdict) {
        out.println("tls-close-probe demo: GracefulTlsCloseHandler on the client, TLS servers on 127.0.0.1");
        out.println();
        List<String[]> table = new ArrayList<>();
        table.add(new String[] {"case", "provider", "protocol", "status", "initiator", "time", "result"});
        for (Row r : rows) {
            TlsCloseEvent e = r.event();
            String result = (r.ok() ? "ok" : "FAIL") + (r.detail().isEmpty() ? "" : ": " + r.detail());
            table.add(new String[] {
                    r.closure().label, r.provider().name(), r.protocol(),
                    e == null ? "-" : e.status().name(),
                    e == null ? "-" : e.initiator().name(),
                    e == null ? "-" : Durations.format(e.elapsed()),
                    result});
        }
        int[] widths = new int[table.get(0).length];
        for (String[] line : table) {
            for (int i = 0; i < line.length; i++) {
                widths[i] = Math.max(widths[i], line[i].length());
            }
        }
        for (String[] line : table) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < line.length; i++) {
                b.append(line[i]);
                if (i < line.length - 1) {
                    b.append(" ".repeat(widths[i] - line[i].length() + 2));
                }
            }
            out.println(b.toString().stripTrailing());
        }
        out.println();
        for (String note : notes) {
            out.println("note: " + note);
        }
        out.println("verdict: " + verdict);
    }

    private void printJson(List<Row> rows, List<String> notes, String verdict, boolean ok) {
        List<Object> cases = new ArrayList<>();
        for (Row r : rows) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("case", r.closure().label);
            m.put("provider", r.provider().name());
            m.put("protocol", r.protocol());
            TlsCloseEvent e = r.event();
            m.put("status", e == null ? null : e.status().name());
            m.put("initiator", e == null ? null : e.initiator().name());
            m.put("elapsedMillis", e == null ? null : Durations.millis(e.elapsed()));
            m.put("expected", r.closure().expected.name());
            m.put("ok", r.ok());
            m.put("detail", r.detail());
            cases.add(m);
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cases", cases);
        m.put("notes", notes);
        m.put("ok", ok);
        m.put("verdict", verdict);
        out.println(Json.write(m));
    }

    /** Collects decoded lines; after a transport reuse they are plaintext. */
    private static final class LineCollector extends ChannelInboundHandlerAdapter {
        private final BlockingQueue<String> lines;

        LineCollector(BlockingQueue<String> lines) {
            this.lines = lines;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf line = (ByteBuf) msg;
            try {
                lines.add(line.toString(StandardCharsets.US_ASCII));
            } finally {
                line.release();
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }
}
