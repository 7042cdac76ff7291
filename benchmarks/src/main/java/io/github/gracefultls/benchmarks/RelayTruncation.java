package io.github.gracefultls.benchmarks;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseRelay;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Promise;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * What real clients receive through a TLS-terminating proxy built on {@link TlsCloseRelay} when the upstream truncates
 * its response: bytes of the body received, of those sent, and what each client reports at the end.
 *
 * <p>One JVM holds three parts on loopback (epoll):
 * <ul>
 *   <li>a plain TCP upstream that answers each connection's request with an HTTP/1.1 200 response,
 *       {@code Connection: close}, no {@code Content-Length} (the body ends with the connection), a body of
 *       deterministic bytes, then resets ({@code SO_LINGER} 0 and close) once its write is done and its kernel's
 *       send queue is empty: every byte has reached the proxy's kernel before the reset;</li>
 *   <li>the proxy: frontend {@code SslHandler} and {@link GracefulTlsCloseHandler}, backend plain TCP on the frontend's
 *       event loop, both with {@code ALLOW_HALF_CLOSURE} and auto-read off, linked by {@link TlsCloseRelay} with the
 *       signal under test;</li>
 *   <li>the clients: curl ({@code -k -sS -o FILE}; it reads at once), Python's {@code ssl} (a script the harness
 *       writes: it sends the request, sleeps for the lateness, then reads; default {@code suppress_ragged_eofs=True}
 *       and, as {@code python-strict}, {@code False}), Go's {@code crypto/tls} (a program the harness writes and
 *       builds with {@code go build}: it sends the request, sleeps for the lateness, then reads; it reports what
 *       {@code Conn.Read} returned last and what the socket under it returned), a Netty client with
 *       {@link GracefulTlsCloseHandler} (the {@link TlsCloseEvent} status; OpenSSL engine; auto-read off for the
 *       lateness), the JDK's blocking
 *       {@link SSLSocket}, and a plain socket straight to the upstream (no proxy: what the upstream itself
 *       delivers).</li>
 * </ul>
 *
 * <p>Signals: {@code RESET} and {@code FIN} ({@link TlsCloseRelay.TruncationSignal}) with the drain period
 * ({@link TlsCloseRelay#DEFAULT_DRAIN} unless {@code --drain-ms}); {@code RESET_AT_ONCE}, {@code RESET} with a drain
 * of 1 ns: the reset right after the flush, a same-run control close to the relay before the drain period;
 * {@code LINK}, {@link TlsCloseRelay#link(Channel, Channel)} with its defaults, the one call an earlier build of the
 * library has too, to measure that build with this harness (its classes first on the class path).
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.github.gracefultls.benchmarks.RelayTruncation \
 *     [--quick] [--size 8m] [--late 0,2] [--signals RESET,FIN,RESET_AT_ONCE] [--provider JDK,OPENSSL] \
 *     [--protocol TLSv1.3] \
 *     [--clients CURL,PYTHON,PYTHON_STRICT,GO,NETTY,SSLSOCKET,DIRECT] [--drain-ms 3000] [--go go]
 * </pre>
 */
@Command(name = "RelayTruncation", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Bytes and end reports of real clients through TlsCloseRelay when the upstream resets "
                + "mid-stream.")
public final class RelayTruncation implements Callable<Integer> {

    /** How the relay is linked. */
    enum Signal {
        /** {@code TruncationSignal.RESET} with the drain period. */
        RESET,
        /** {@code TruncationSignal.FIN} with the drain period. */
        FIN,
        /** {@code TruncationSignal.RESET} with a drain of 1 ns: a reset right after the flush. */
        RESET_AT_ONCE,
        /** {@code link(frontend, backend)}: whatever the library on the class path does by default. */
        LINK
    }

    /** The clients. */
    enum Client {
        CURL("curl"), PYTHON("python"), PYTHON_STRICT("python-strict"), GO("go"), NETTY("netty"),
        SSLSOCKET("sslsocket"), DIRECT("plain-direct");

        final String label;

        Client(String label) {
            this.label = label;
        }

        /** curl cannot start reading late. */
        boolean canBeLate() {
            return this != CURL;
        }
    }

    /** One measurement. {@code body} is -1 when the client could not run. */
    record Row(String signal, String engine, Client client, int lateSeconds, long body, long expected, String report,
               String relay) {
        boolean complete() {
            return body == expected;
        }
    }

    static final String REQUEST = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    static final String HEADER = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            + "Connection: close\r\n\r\n";
    private static final byte[] HEADER_BYTES = HEADER.getBytes(StandardCharsets.US_ASCII);
    private static final long CLIENT_BOUND_SECONDS = 60;

    @Option(names = "--quick", description = "A short run: 64 KiB, clients reading at once, a drain of 300 ms, "
            + "unless given.")
    private boolean quick;

    @Option(names = "--size", paramLabel = "BYTES", converter = Cli.BytesConverter.class,
            description = "Body size. Default: 8m (--quick: 64k).")
    private Long size;

    @Option(names = "--late", paramLabel = "S", split = ",",
            description = "Seconds a client waits after its request before it reads (curl: 0 only). Default: 0,2 "
                    + "(--quick: 0).")
    private List<Integer> late;

    @Option(names = "--signals", paramLabel = "SIGNAL", split = ",", defaultValue = "RESET,FIN,RESET_AT_ONCE",
            description = "RESET, FIN, RESET_AT_ONCE, LINK. Default: ${DEFAULT-VALUE}.")
    private List<Signal> signals;

    @Option(names = "--clients", paramLabel = "CLIENT", split = ",",
            defaultValue = "CURL,PYTHON,PYTHON_STRICT,NETTY,SSLSOCKET,DIRECT",
            description = "CURL, PYTHON, PYTHON_STRICT, GO, NETTY, SSLSOCKET, DIRECT. Default: ${DEFAULT-VALUE}.")
    private List<Client> clients;

    @Option(names = "--drain-ms", paramLabel = "MS", description = "Drain period of RESET and FIN, in ms. Default: "
            + "TlsCloseRelay.DEFAULT_DRAIN (--quick: 300).")
    private Long drainMillis;

    @Option(names = "--curl", paramLabel = "PATH", defaultValue = "curl",
            description = "curl. Default: ${DEFAULT-VALUE}.")
    private String curl;

    @Option(names = "--python", paramLabel = "PATH", defaultValue = "python3",
            description = "Python 3 interpreter. Default: ${DEFAULT-VALUE}.")
    private String python;

    @Option(names = "--go", paramLabel = "PATH", defaultValue = "go",
            description = "Go toolchain, to build the Go client. Default: ${DEFAULT-VALUE}.")
    private String go;

    @Mixin
    private Cli.EachTls tls;

    private RelayTruncation() {
    }

    public static void main(String[] args) {
        Cli.run(new RelayTruncation(), args);
    }

    /** What one run measures. {@code drain} null: the library's default. */
    record Config(long size, List<Integer> late, List<Signal> signals, List<SslProvider> providers, String protocol,
                  List<Client> clients, Duration drain, String curl, String python, String go) {
    }

    @Override
    public Integer call() throws Exception {
        System.out.println("# RelayTruncation: " + Env.describe());
        long size = this.size != null ? this.size : quick ? 64 << 10 : 8 << 20;
        List<Integer> late = this.late != null ? this.late : quick ? List.of(0) : List.of(0, 2);
        Long drainMillis = this.drainMillis != null ? this.drainMillis : quick ? Long.valueOf(300) : null;
        Config config = new Config(size, late, signals, tls.providers, tls.protocol, clients,
                drainMillis == null ? null : Duration.ofMillis(drainMillis), curl, python, go);
        System.out.println("# " + versions(config));
        List<Row> rows = run(config);
        print(config, rows);
        System.out.println("# done, " + Env.loadAverage());
        return 0;
    }

    static String versions(Config config) {
        StringBuilder b = new StringBuilder();
        if (config.clients().contains(Client.CURL)) {
            b.append(firstLine(config.curl(), "--version")).append("; ");
        }
        if (config.clients().contains(Client.PYTHON) || config.clients().contains(Client.PYTHON_STRICT)) {
            b.append(firstLine(config.python(), "-c",
                    "import ssl, sys; print('Python', sys.version.split()[0], ssl.OPENSSL_VERSION)")).append("; ");
        }
        if (config.clients().contains(Client.GO)) {
            b.append(firstLine(config.go(), "version")).append("; ");
        }
        return b.append("protocol ").append(config.protocol()).append(", body ").append(config.size())
                .append(" bytes, drain ").append(config.drain() == null ? "default" : config.drain().toMillis() + "ms")
                .toString();
    }

    private static String firstLine(String... command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(10, TimeUnit.SECONDS);
            return out.lines().findFirst().orElse("?").trim();
        } catch (IOException e) {
            return command[0] + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return command[0] + ": interrupted";
        }
    }

    /** Prints the table, in Markdown, in the order measured. */
    static void print(Config config, List<Row> rows) {
        System.out.println("| signal | engine | client | late | body bytes received / " + String.format(Locale.ROOT,
                "%,d", config.size()) + " | client's report | relay outcome |");
        System.out.println("| --- | --- | --- | --- | --- | --- | --- |");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "| %s | %s | %s | %d s | %s%s | %s | %s |%n", r.signal(), r.engine(),
                    r.client().label, r.lateSeconds(), r.body() < 0 ? "-" : String.format(Locale.ROOT, "%,d", r.body()),
                    r.body() >= 0 && !r.complete() ? " (lost " + String.format(Locale.ROOT, "%,d",
                            r.expected() - r.body()) + ")" : "", r.report(), r.relay());
        }
    }

    static List<Row> run(Config config) throws Exception {
        byte[] body = body(config.size());
        Path dir = Files.createTempDirectory("relay-truncation");
        Path script = dir.resolve("client.py");
        Files.writeString(script, PYTHON_CLIENT);
        Path goClient = config.clients().contains(Client.GO) ? buildGo(config.go(), dir) : null;
        EventLoopGroup boss = Net.group("truncation-boss");
        EventLoopGroup upstreamLoop = Net.group("truncation-upstream");
        EventLoopGroup proxyLoop = Net.group("truncation-proxy");
        EventLoopGroup clientLoop = Net.group("truncation-client");
        ScheduledExecutorService readers = Executors.newScheduledThreadPool(1, r -> {
            Thread t = new Thread(r, "truncation-reader");
            t.setDaemon(true);
            return t;
        });
        List<Row> rows = new ArrayList<>();
        try {
            Channel upstream = Net.server(boss, upstreamLoop, ch -> ch.pipeline().addLast(new Upstream(body)));
            int upstreamPort = Net.port(upstream);
            if (config.clients().contains(Client.DIRECT)) {
                for (int late : config.late()) {
                    Measured m = plain(readers, upstreamPort, late);
                    rows.add(row("-", "-", Client.DIRECT, late, m, body.length, "-"));
                }
            }
            for (Signal signal : config.signals()) {
                for (SslProvider provider : config.providers()) {
                    BlockingQueue<TlsCloseRelay> relays = new LinkedBlockingQueue<>();
                    Channel proxy = Net.server(boss, proxyLoop, ch -> {
                        ch.config().setAutoRead(false);
                        ch.pipeline().addLast("ssl",
                                TlsContexts.server(provider, config.protocol()).newHandler(ch.alloc()));
                        ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                        ch.pipeline().addLast("connect", new Connector(upstreamPort, signal, config.drain(), relays));
                    });
                    int port = Net.port(proxy);
                    for (Client client : config.clients()) {
                        if (client == Client.DIRECT) {
                            continue;
                        }
                        for (int late : config.late()) {
                            if (late != 0 && !client.canBeLate()) {
                                continue;
                            }
                            if (client == Client.GO && goClient == null) {
                                rows.add(row(signal.name(), provider.name(), client, late,
                                        new Measured(-1, -1, "go client not built (see above)"), body.length, "-"));
                                continue;
                            }
                            Measured m = measure(config, client, port, late, dir, script, goClient, clientLoop,
                                    readers);
                            String relay = relayOutcome(relays);
                            rows.add(row(signal.name(), provider.name(), client, late, m, body.length, relay));
                        }
                    }
                    proxy.close().syncUninterruptibly();
                }
            }
            upstream.close().syncUninterruptibly();
            return rows;
        } finally {
            readers.shutdownNow();
            Net.shutdown(clientLoop, proxyLoop, upstreamLoop, boss);
            deleteTree(dir);
        }
    }

    private static Row row(String signal, String engine, Client client, int late, Measured m, long expected,
                           String relay) {
        String report = m.report();
        if (m.mismatch() >= 0) {
            report += "; BYTES DIFFER at body offset " + m.mismatch();
        }
        Row r = new Row(signal, engine, client, late, m.body(), expected, report, relay);
        System.out.printf(Locale.ROOT, "# %s %s %s late %d s: %d of %d bytes, %s; relay %s%n", signal, engine,
                client.label, late, r.body(), expected, report, relay);
        return r;
    }

    /** The relay's outcome, each side's end; waits for it with a bound. */
    private static String relayOutcome(BlockingQueue<TlsCloseRelay> relays) throws InterruptedException {
        TlsCloseRelay relay = relays.poll(10, TimeUnit.SECONDS);
        if (relay == null) {
            return "none";
        }
        if (!relay.closeFuture().await(15, TimeUnit.SECONDS)) {
            return "still open";
        }
        TlsCloseRelay.Outcome o = relay.closeFuture().getNow();
        return "frontend " + o.frontendEnd() + ", backend " + o.backendEnd();
    }

    /** Bytes of the body received, its first differing offset (-1: none), and what the client reported. */
    record Measured(long body, long mismatch, String report) {
    }

    private static Measured measure(Config config, Client client, int port, int late, Path dir, Path script,
                                    Path goClient, EventLoopGroup clientLoop, ScheduledExecutorService readers)
            throws Exception {
        switch (client) {
            case CURL:
                return curl(config.curl(), port, dir);
            case PYTHON:
            case PYTHON_STRICT:
                return python(config.python(), script, port, late, client == Client.PYTHON_STRICT, dir);
            case GO:
                return goClient(goClient, port, late, dir);
            case NETTY:
                return netty(clientLoop, config.protocol(), port, late);
            case SSLSOCKET:
                return sslSocket(readers, port, late);
            default:
                throw new IllegalArgumentException(client.name());
        }
    }

    // ---- the upstream and the proxy

    /** Reads the request, writes the response, then resets. */
    private static final class Upstream extends ChannelInboundHandlerAdapter {
        private final byte[] body;
        private final StringBuilder request = new StringBuilder();
        private boolean answered;

        Upstream(byte[] body) {
            this.body = body;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf in = (ByteBuf) msg;
            try {
                if (answered) {
                    return;
                }
                request.append(in.toString(StandardCharsets.US_ASCII));
                if (request.indexOf("\r\n\r\n") < 0) {
                    return;
                }
                answered = true;
                Channel ch = ctx.channel();
                ch.writeAndFlush(Unpooled.wrappedBuffer(HEADER_BYTES, body))
                        .addListener((ChannelFuture f) -> resetOnceSent(ch, System.nanoTime()));
            } finally {
                ReferenceCountUtil.release(in);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }

        /**
         * Resets once the kernel's send queue of {@code ch} is empty: every byte has reached the peer's kernel (a
         * reset discards what is still queued). A write's completion only means that the bytes are in the send
         * queue. Checks every 5 ms, for {@value #SENT_BOUND_SECONDS} s at most.
         */
        private static void resetOnceSent(Channel ch, long start) {
            long queued = sendQueue(ch);
            if (queued == 0 || queued < 0 || System.nanoTime() - start > TimeUnit.SECONDS.toNanos(SENT_BOUND_SECONDS)) {
                if (queued != 0) {
                    System.out.println("# upstream: resetting with " + queued + " bytes in its send queue");
                }
                ch.config().setOption(ChannelOption.SO_LINGER, 0);
                ch.close();
            } else {
                ch.eventLoop().schedule(() -> resetOnceSent(ch, start), 5, TimeUnit.MILLISECONDS);
            }
        }
    }

    private static final int SENT_BOUND_SECONDS = 60;

    /**
     * The bytes in the kernel's send queue of a loopback TCP socket (sent and not acknowledged, or not sent yet): the
     * {@code tx_queue} column of /proc/net/tcp or tcp6 for its pair of ports. -1 if it cannot be read.
     */
    static long sendQueue(Channel ch) {
        int local = ((InetSocketAddress) ch.localAddress()).getPort();
        int remote = ((InetSocketAddress) ch.remoteAddress()).getPort();
        String ports = String.format(Locale.ROOT, ":%04X", local);
        String peer = String.format(Locale.ROOT, ":%04X", remote);
        for (String file : new String[] {"/proc/net/tcp", "/proc/net/tcp6"}) {
            try {
                for (String line : Files.readAllLines(Path.of(file))) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length > 4 && f[1].endsWith(ports) && f[2].endsWith(peer)) {
                        return Long.parseLong(f[4].substring(0, f[4].indexOf(':')), 16);
                    }
                }
            } catch (IOException | RuntimeException e) {
                return -1;
            }
        }
        return -1;
    }

    /** The proxy's frontend: connects to the upstream on the frontend's loop, then links the two channels. */
    private static final class Connector extends ChannelInboundHandlerAdapter {
        private final int upstreamPort;
        private final Signal signal;
        private final Duration drain;
        private final BlockingQueue<TlsCloseRelay> relays;

        Connector(int upstreamPort, Signal signal, Duration drain, BlockingQueue<TlsCloseRelay> relays) {
            this.upstreamPort = upstreamPort;
            this.signal = signal;
            this.drain = drain;
            this.relays = relays;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            Channel frontend = ctx.channel();
            new Bootstrap().group(frontend.eventLoop())
                    .channel(EpollSocketChannel.class)
                    .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .option(ChannelOption.AUTO_READ, false)
                    // Not Net.Quiet: the relay, added after it, must see the backend's reset (exceptionCaught).
                    .handler(new ChannelInboundHandlerAdapter())
                    .connect(Net.LOOPBACK, upstreamPort)
                    .addListener((ChannelFuture f) -> {
                        if (f.isSuccess()) {
                            relays.add(link(frontend, f.channel(), signal, drain));
                        } else {
                            frontend.close();
                        }
                    });
            ctx.pipeline().remove(this);
        }
    }

    /**
     * Links with the signal under test. {@link Signal#LINK} calls only {@code link(frontend, backend)}, so that an
     * earlier build of the library, without {@code TruncationSignal}, runs it too: the JVM resolves the other call
     * only when it is made.
     */
    static TlsCloseRelay link(Channel frontend, Channel backend, Signal signal, Duration drain) {
        if (signal == Signal.LINK) {
            return TlsCloseRelay.link(frontend, backend);
        }
        return linkWith(frontend, backend, signal, drain);
    }

    private static TlsCloseRelay linkWith(Channel frontend, Channel backend, Signal signal, Duration drain) {
        Duration d = drain != null ? drain : TlsCloseRelay.DEFAULT_DRAIN;
        switch (signal) {
            case RESET:
                return TlsCloseRelay.link(frontend, backend, TlsCloseRelay.TruncationSignal.RESET, d);
            case FIN:
                return TlsCloseRelay.link(frontend, backend, TlsCloseRelay.TruncationSignal.FIN, d);
            case RESET_AT_ONCE:
                return TlsCloseRelay.link(frontend, backend, TlsCloseRelay.TruncationSignal.RESET, Duration.ofNanos(1));
            default:
                throw new IllegalArgumentException(signal.name());
        }
    }

    // ---- the body and its check

    /** The body: byte i is i mod 251 (a prime, so that a lost or repeated stretch shows unless it is 251 long). */
    static byte[] body(long size) {
        if (size < 0 || size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("size: " + size + " (expected: 0..2 GiB)");
        }
        byte[] b = new byte[(int) size];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (i % 251);
        }
        return b;
    }

    /** Checks a stream of header and body bytes, or of body bytes only, against what the upstream sent. */
    static final class Check {
        private long position;
        private long mismatch = -1;

        /** {@code withHeader}: the stream starts with the response header (a raw socket); otherwise with the body. */
        Check(boolean withHeader) {
            position = withHeader ? 0 : HEADER_BYTES.length;
        }

        void feed(byte[] data, int offset, int length) {
            for (int i = offset; i < offset + length; i++) {
                feed(data[i]);
            }
        }

        void feed(ByteBuf buf) {
            for (int i = buf.readerIndex(); i < buf.writerIndex(); i++) {
                feed(buf.getByte(i));
            }
        }

        private void feed(byte b) {
            if (mismatch < 0) {
                long p = position - HEADER_BYTES.length;
                byte expected = p < 0 ? HEADER_BYTES[(int) position] : (byte) (p % 251);
                if (b != expected) {
                    mismatch = Math.max(p, 0);
                }
            }
            position++;
        }

        long body() {
            return Math.max(0, position - HEADER_BYTES.length);
        }

        Measured measured(String report) {
            return new Measured(body(), mismatch, report);
        }
    }

    static String describe(Throwable t) {
        String m = t.getMessage();
        return t.getClass().getSimpleName() + (m == null ? "" : ": " + m);
    }

    // ---- the clients

    private static Measured curl(String curl, int port, Path dir) throws Exception {
        Path out = dir.resolve("curl.body");
        Path err = dir.resolve("curl.err");
        Files.deleteIfExists(out);
        Process p = new ProcessBuilder(curl, "-k", "-sS", "--http1.1", "--max-time", "60", "-o", out.toString(),
                "https://127.0.0.1:" + port + "/")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(err.toFile()).start();
        p.getOutputStream().close();
        if (!p.waitFor(CLIENT_BOUND_SECONDS + 10, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Measured(-1, -1, "curl did not end");
        }
        Check check = new Check(false);
        if (Files.exists(out)) {
            byte[] data = Files.readAllBytes(out);
            check.feed(data, 0, data.length);
        }
        String message = Files.readString(err).lines().findFirst().orElse("").replaceFirst("^curl: \\(\\d+\\) ", "");
        return check.measured("exit " + p.exitValue() + (message.isEmpty() ? "" : ": " + message));
    }

    /**
     * The Python client: arguments host, port, lateness in seconds, "strict" or "default" (suppress_ragged_eofs), and
     * the file for the raw bytes; prints the end: "EOF" or the exception's type and message.
     */
    static final String PYTHON_CLIENT = String.join("\n",
            "import socket, ssl, sys, time",
            "host, port, late, mode, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]",
            "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)",
            "ctx.check_hostname = False",
            "ctx.verify_mode = ssl.CERT_NONE",
            "raw = socket.create_connection((host, port), timeout=60)",
            "s = ctx.wrap_socket(raw, server_hostname='localhost', suppress_ragged_eofs=(mode != 'strict'))",
            "s.sendall(b'" + REQUEST.replace("\r", "\\r").replace("\n", "\\n") + "')",
            "time.sleep(late)",
            "end = 'EOF'",
            "with open(out, 'wb') as f:",
            "    while True:",
            "        try:",
            "            b = s.recv(65536)",
            "        except Exception as e:",
            "            end = type(e).__name__ + ': ' + str(e)",
            "            break",
            "        if not b:",
            "            break",
            "        f.write(b)",
            "s.close()",
            "print(end)",
            "");

    private static Measured python(String python, Path script, int port, int late, boolean strict, Path dir)
            throws Exception {
        Path out = dir.resolve("python.raw");
        Path stdout = dir.resolve("python.out");
        Files.deleteIfExists(out);
        return runSavingClient("python", List.of(python, script.toString(), Net.LOOPBACK, Integer.toString(port),
                Integer.toString(late), strict ? "strict" : "default", out.toString()), out, stdout, late);
    }

    /**
     * Runs a client that saves the body it read to {@code out} and prints how its stream ended as its last line;
     * checks the body's bytes.
     */
    private static Measured runSavingClient(String name, List<String> command, Path out, Path stdout, int late)
            throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(stdout.toFile()).start();
        p.getOutputStream().close();
        if (!p.waitFor(CLIENT_BOUND_SECONDS + late + 10, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Measured(-1, -1, name + " did not end");
        }
        Check check = new Check(true);
        if (Files.exists(out)) {
            byte[] data = Files.readAllBytes(out);
            check.feed(data, 0, data.length);
        }
        List<String> lines = Files.readAllLines(stdout);
        String end = lines.isEmpty() ? "no output, exit " + p.exitValue() : lines.get(lines.size() - 1);
        return check.measured(end);
    }

    /**
     * The Go client, {@code crypto/tls}: arguments host, port, lateness in seconds, and the file for the raw bytes.
     * Sends the request, sleeps for the lateness, then reads until {@code Conn.Read} returns an error; prints
     * "Read: X; socket: Y", X what that last {@code Read} returned (what the application sees) and Y how the TCP
     * connection's own {@code Read} under {@code crypto/tls} ended ("none" if it did not). Each is {@code io.EOF},
     * "connection reset by peer" ({@code ECONNRESET}), or the error's type and message. {@code crypto/tls} returns
     * {@code io.EOF} after a {@code close_notify} and after a bare FIN at a record boundary alike: only the socket
     * column tells them apart.
     */
    static final String GO_CLIENT = String.join("\n",
            "package main",
            "",
            "import (",
            "\t\"crypto/tls\"",
            "\t\"errors\"",
            "\t\"fmt\"",
            "\t\"io\"",
            "\t\"net\"",
            "\t\"os\"",
            "\t\"syscall\"",
            "\t\"time\"",
            ")",
            "",
            "// sock is the TCP connection under crypto/tls; end is the first error its Read returned.",
            "type sock struct {",
            "\tnet.Conn",
            "\tend error",
            "}",
            "",
            "func (s *sock) Read(p []byte) (int, error) {",
            "\tn, err := s.Conn.Read(p)",
            "\tif err != nil && s.end == nil {",
            "\t\ts.end = err",
            "\t}",
            "\treturn n, err",
            "}",
            "",
            "func name(err error) string {",
            "\tswitch {",
            "\tcase err == nil:",
            "\t\treturn \"none\"",
            "\tcase err == io.EOF:",
            "\t\treturn \"io.EOF\"",
            "\tcase errors.Is(err, syscall.ECONNRESET):",
            "\t\treturn \"connection reset by peer\"",
            "\tdefault:",
            "\t\treturn fmt.Sprintf(\"%T: %v\", err, err)",
            "\t}",
            "}",
            "",
            "func main() {",
            "\thost, port, out := os.Args[1], os.Args[2], os.Args[4]",
            "\tlate, err := time.ParseDuration(os.Args[3] + \"s\")",
            "\tif err != nil {",
            "\t\tfmt.Println(\"lateness: \" + err.Error())",
            "\t\tos.Exit(2)",
            "\t}",
            "\traw, err := net.DialTimeout(\"tcp\", net.JoinHostPort(host, port), 10*time.Second)",
            "\tif err != nil {",
            "\t\tfmt.Println(\"dial: \" + name(err))",
            "\t\tos.Exit(1)",
            "\t}",
            "\ts := &sock{Conn: raw}",
            "\tc := tls.Client(s, &tls.Config{ServerName: \"localhost\", InsecureSkipVerify: true})",
            "\tc.SetDeadline(time.Now().Add(" + CLIENT_BOUND_SECONDS + "*time.Second + late))",
            "\tif _, err := c.Write([]byte(\"" + REQUEST.replace("\r", "\\r").replace("\n", "\\n")
                    + "\")); err != nil {",
            "\t\tfmt.Println(\"request: \" + name(err))",
            "\t\tos.Exit(1)",
            "\t}",
            "\ttime.Sleep(late)",
            "\tf, err := os.Create(out)",
            "\tif err != nil {",
            "\t\tfmt.Println(\"output: \" + err.Error())",
            "\t\tos.Exit(2)",
            "\t}",
            "\tbuf := make([]byte, 65536)",
            "\tvar end error",
            "\tfor end == nil {",
            "\t\tvar n int",
            "\t\tn, end = c.Read(buf)",
            "\t\tf.Write(buf[:n])",
            "\t}",
            "\tf.Close()",
            "\traw.Close()",
            "\tfmt.Printf(\"Read: %s; socket: %s\\n\", name(end), name(s.end))",
            "}",
            "");

    /**
     * Builds the Go client into {@code dir}, with its build cache there too; null, with a line saying why, when
     * {@code go} is missing or the build fails.
     */
    static Path buildGo(String go, Path dir) throws Exception {
        Path src = Files.createDirectories(dir.resolve("go-client"));
        Files.writeString(src.resolve("main.go"), GO_CLIENT);
        Path binary = src.resolve("go_client");
        Path log = dir.resolve("go-build.log");
        ProcessBuilder pb = new ProcessBuilder(go, "build", "-o", binary.toString(), "main.go").directory(src.toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("GOCACHE", dir.resolve("go-cache").toString());
        pb.environment().put("GOPATH", dir.resolve("go-path").toString());
        pb.environment().put("GOFLAGS", "");
        pb.environment().put("GO111MODULE", "on");
        pb.environment().put("GOPROXY", "off");
        pb.environment().put("GOTOOLCHAIN", "local");
        pb.environment().put("CGO_ENABLED", "0");
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            System.out.println("# go client skipped: " + go + " not found (" + e.getMessage() + ")");
            return null;
        }
        p.getOutputStream().close();
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            System.out.println("# go client skipped: go build did not end in 300 s");
            return null;
        }
        if (p.exitValue() != 0 || !Files.isExecutable(binary)) {
            System.out.println("# go client skipped: go build exit " + p.exitValue() + ": "
                    + String.join(" / ", Files.readAllLines(log)));
            return null;
        }
        return binary;
    }

    private static Measured goClient(Path binary, int port, int late, Path dir) throws Exception {
        Path out = dir.resolve("go.raw");
        Path stdout = dir.resolve("go.out");
        Files.deleteIfExists(out);
        return runSavingClient("go", List.of(binary.toString(), Net.LOOPBACK, Integer.toString(port),
                Integer.toString(late), out.toString()), out, stdout, late);
    }

    /** Deletes a directory and what it holds (the Go build cache has subdirectories). */
    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var paths = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
                p.toFile().setWritable(true);
                Files.deleteIfExists(p);
            }
        }
    }

    /** The Netty client: reads after the lateness (auto-read off until then); reports the TlsCloseEvent. */
    private static Measured netty(EventLoopGroup clientLoop, String protocol, int port, int late) throws Exception {
        Promise<Measured> done = clientLoop.next().newPromise();
        Channel ch = Net.client(clientLoop, c -> {
            c.pipeline().addLast("ssl", TlsContexts.client(SslProvider.OPENSSL, protocol).newHandler(c.alloc()));
            c.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
            c.pipeline().addLast("client", new NettyClient(late, done));
        }).connect(Net.LOOPBACK, port).sync().channel();
        if (!done.await(CLIENT_BOUND_SECONDS + late, TimeUnit.SECONDS)) {
            ch.close();
            return new Measured(-1, -1, "netty client did not end");
        }
        return done.getNow();
    }

    private static final class NettyClient extends ChannelInboundHandlerAdapter {
        private final int late;
        private final Promise<Measured> done;
        private final Check check = new Check(true);
        private TlsCloseEvent event;
        private Throwable error;

        NettyClient(int late, Promise<Measured> done) {
            this.late = late;
            this.done = done;
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof SslHandshakeCompletionEvent && ((SslHandshakeCompletionEvent) evt).isSuccess()) {
                if (late > 0) {
                    ctx.channel().config().setAutoRead(false);
                    ctx.executor().schedule(() -> {
                        ctx.channel().config().setAutoRead(true);
                    }, late, TimeUnit.SECONDS);
                }
                ctx.writeAndFlush(Unpooled.copiedBuffer(REQUEST, StandardCharsets.US_ASCII));
            } else if (evt instanceof TlsCloseEvent) {
                event = (TlsCloseEvent) evt;
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf buf = (ByteBuf) msg;
            try {
                check.feed(buf);
            } finally {
                buf.release();
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (error == null) {
                error = cause;
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            String report;
            if (event == null) {
                report = "no TlsCloseEvent" + (error == null ? "" : " (" + describe(error) + ")");
            } else {
                report = event.status().name() + (event.cause() == null ? "" : ": " + describe(event.cause()));
            }
            done.trySuccess(check.measured(report));
            ctx.fireChannelInactive();
        }
    }

    private static Measured sslSocket(ScheduledExecutorService readers, int port, int late) throws Exception {
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new TrustManager[] {new TrustAll()}, null);
        SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket();
        return readLate(readers, socket, port, late, () -> socket.startHandshake());
    }

    private static Measured plain(ScheduledExecutorService readers, int port, int late) throws Exception {
        return readLate(readers, new Socket(), port, late, () -> { });
    }

    private interface Step {
        void run() throws IOException;
    }

    /** Connects, sends the request, and reads after the lateness to -1 or an exception, on the readers' thread. */
    private static Measured readLate(ScheduledExecutorService readers, Socket socket, int port, int late,
                                     Step handshake) throws Exception {
        try {
            socket.connect(new InetSocketAddress(Net.LOOPBACK, port), 10_000);
            socket.setSoTimeout((int) TimeUnit.SECONDS.toMillis(CLIENT_BOUND_SECONDS));
            handshake.run();
            socket.getOutputStream().write(REQUEST.getBytes(StandardCharsets.US_ASCII));
            socket.getOutputStream().flush();
            return readers.schedule(() -> {
                Check check = new Check(true);
                byte[] buf = new byte[65536];
                InputStream in = socket.getInputStream();
                String end;
                try {
                    while (true) {
                        int n = in.read(buf);
                        if (n < 0) {
                            end = "-1";
                            break;
                        }
                        check.feed(buf, 0, n);
                    }
                } catch (IOException e) {
                    end = describe(e);
                }
                return check.measured(end);
            }, late, TimeUnit.SECONDS).get(CLIENT_BOUND_SECONDS + late + 10, TimeUnit.SECONDS);
        } finally {
            socket.close();
        }
    }

    /** Trusts any certificate: the proxy's is self-signed, made at start. */
    private static final class TrustAll implements X509TrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }
}
