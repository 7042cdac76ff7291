package io.github.gracefultls.benchmarks;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import java.util.concurrent.Callable;
import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Promise;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * Closure at scale: {@code --connections} (default 10,000) TLS connections on loopback, one event loop per side
 * (the server in a JVM of its own, see {@link ScaleServer}), all closed with {@code close()} at once from the
 * client's event loop, after {@code --warmup} rounds that are not counted. The time runs until every connection is closed on both sides and, with the handler, every
 * {@link TlsCloseEvent} fired on both sides. Two variants alternate on fresh connections:
 *
 * <ul>
 *   <li>{@code graceful}: {@link GracefulTlsCloseHandler} on both sides; each close is a SHUT_RDWR, one round trip
 *       of {@code close_notify}s, and the server answers and closes by its {@code PeerClosePolicy.CLOSE}.</li>
 *   <li>{@code netty}: {@code SslHandler} alone with {@code setCloseNotifyReadTimeout(3 s)}, Netty's own waiting
 *       close: our {@code close_notify}, then the peer's (the server's engine replies by itself), then the transport
 *       closes; the server closes on the FIN.</li>
 * </ul>
 *
 * <p>Also reported: the peak of the client's heap during the closure (sampled every millisecond), and the leaks the
 * leak detector reported in both JVMs at the end, at the level {@code -Dio.netty.leakDetection.level} sets.
 *
 * <pre>
 * java -Xms2g -Xmx2g -cp benchmarks/target/benchmarks.jar io.github.gracefultls.benchmarks.ClosureAtScale \
 *     [--connections 10000] [--warmup 2] [--rounds 4] [--provider OPENSSL] [--protocol TLSv1.3] \
 *     [--jfr closures.jfr]
 * </pre>
 */
@Command(name = "ClosureAtScale", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Closes thousands of TLS connections at once, with and without GracefulTlsCloseHandler.")
public final class ClosureAtScale implements Callable<Integer> {

    static final String GRACEFUL = "graceful";
    static final String NETTY = "netty";
    /** Netty's waiting close: how long the SslHandler waits for the peer's close_notify. */
    private static final long NETTY_READ_TIMEOUT_SECONDS = 3;
    private static final int IN_FLIGHT = 64;
    static final int HANDSHAKE_TIMEOUT_SECONDS = 120;
    private static int sourceAddress;
    /** With --jfr FILE: a flight recording (CPU samples every ms) of the client during the closures only. */
    private static Path jfrFile;

    /** One closure of all connections. Times in ms from the first close(), heap in bytes. */
    record Round(String variant, int connections, double clientMillis, double serverMillis, double allMillis,
                 long heapBefore, long heapPeak, int clientEvents, int clientClean, int serverEvents,
                 int serverClean) {
    }

    record Result(String provider, String protocol, int connections, List<Round> rounds, long clientLeaks,
                  long serverLeaks, String leakLevel) {
        List<Double> allMillis(String variant) {
            List<Double> out = new ArrayList<>();
            for (Round r : rounds) {
                if (r.variant().equals(variant)) {
                    out.add(r.allMillis());
                }
            }
            return out;
        }

        double ratio() {
            return Stats.of(allMillis(GRACEFUL)).median() / Stats.of(allMillis(NETTY)).median();
        }
    }

    @Option(names = "--quick", description = "A short run: 200 connections, 1 round, no warm-up unless given.")
    private boolean quick;

    @Option(names = "--connections", paramLabel = "N", description = "Connections. Default: 10000 (--quick: 200).")
    private Integer connections;

    @Option(names = "--rounds", paramLabel = "N", description = "Measured rounds per variant. Default: 4 (--quick: 1).")
    private Integer rounds;

    @Option(names = "--warmup", paramLabel = "N", description = "Uncounted rounds first. Default: 2 (--quick: 0).")
    private Integer warmup;

    @Mixin
    private Cli.OneTls tls;

    @Option(names = "--jfr", paramLabel = "FILE", description = "Record the client's closures with JFR to FILE.")
    private Path jfr;

    private ClosureAtScale() {
    }

    public static void main(String[] args) {
        Cli.run(new ClosureAtScale(), args);
    }

    @Override
    public Integer call() throws Exception {
        LeakCounter.install();
        System.out.println("# ClosureAtScale: " + Env.describe());
        jfrFile = jfr;
        print(run(tls.provider, tls.protocol, connections != null ? connections : quick ? 200 : 10_000,
                warmup != null ? warmup : quick ? 0 : 2, rounds != null ? rounds : quick ? 1 : 4));
        System.out.println("# done, " + Env.loadAverage());
        return 0;
    }

    static void print(Result r) {
        System.out.printf(Locale.ROOT, "%s %s, %d connections, one event loop per side, leak detection %s%n",
                r.provider(), r.protocol(), r.connections(), r.leakLevel());
        System.out.println("  variant   client ms  server ms  all ms    heap before MiB  peak MiB  client events "
                + "(clean)  server events (clean)");
        for (Round x : r.rounds()) {
            System.out.printf(Locale.ROOT, "  %-8s  %9.1f  %9.1f  %8.1f  %15.1f  %8.1f  %6d (%d)  %6d (%d)%n",
                    x.variant(), x.clientMillis(), x.serverMillis(), x.allMillis(), x.heapBefore() / 1048576.0,
                    x.heapPeak() / 1048576.0, x.clientEvents(), x.clientClean(), x.serverEvents(), x.serverClean());
        }
        System.out.println("  graceful all ms: " + Stats.of(r.allMillis(GRACEFUL)).format("%.1f"));
        System.out.println("  netty    all ms: " + Stats.of(r.allMillis(NETTY)).format("%.1f"));
        System.out.printf(Locale.ROOT, "  ratio graceful/netty (medians): %.3f%n", r.ratio());
        System.out.println("  leaks reported: client " + r.clientLeaks() + ", server " + r.serverLeaks());
    }

    static Result run(SslProvider provider, String protocol, int connections, int warmup, int rounds)
            throws Exception {
        LeakCounter.install();
        EventLoopGroup loop = Net.group("scale-client");
        List<Round> results = new ArrayList<>();
        try (ServerProcess server = new ServerProcess(provider, protocol)) {
            // Warm-up rounds, not counted: the first closures of 10,000 connections run in the interpreter.
            for (int i = 0; i < warmup; i++) {
                round(loop, server, provider, protocol, connections, GRACEFUL);
                round(loop, server, provider, protocol, connections, NETTY);
            }
            for (int i = 0; i < rounds; i++) {
                boolean gracefulFirst = (i % 2) == 0; // ABBA
                for (int k = 0; k < 2; k++) {
                    String variant = gracefulFirst == (k == 0) ? GRACEFUL : NETTY;
                    results.add(round(loop, server, provider, protocol, connections, variant));
                }
            }
            long clientLeaks = LeakCounter.collect();
            server.send("LEAKS");
            long serverLeaks = Long.parseLong(server.await("LEAKS", 120).split(" ")[1]);
            return new Result(provider.name(), protocol, connections, results, clientLeaks, serverLeaks,
                    LeakCounter.level());
        } finally {
            Net.shutdown(loop);
        }
    }

    private static Round round(EventLoopGroup loop, ServerProcess server, SslProvider provider, String protocol,
                               int n, String variant) throws Exception {
        boolean graceful = GRACEFUL.equals(variant);
        server.send("EXPECT " + variant + " " + n);
        server.await("OK", 30);
        EventLoop executor = loop.next();
        ClientCounters counters = new ClientCounters(executor.newPromise(), n, graceful);
        List<Channel> channels = connect(loop, graceful ? server.gracefulPort : server.nettyPort, provider,
                protocol, n, graceful, counters);
        server.await("HANDSHAKEN", 300);
        if (!graceful) {
            // Netty's own close that waits for the peer's close_notify, as the graceful closure does.
            for (Channel ch : channels) {
                ch.pipeline().get(SslHandler.class).setCloseNotifyReadTimeout(NETTY_READ_TIMEOUT_SECONDS,
                        TimeUnit.SECONDS);
            }
        }

        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        System.gc();
        long heapBefore = memory.getHeapMemoryUsage().getUsed();
        HeapSampler sampler = new HeapSampler(memory);
        Recording recording = null;
        if (jfrFile != null) {
            recording = new Recording(Configuration.getConfiguration("profile"));
            recording.enable("jdk.ExecutionSample").withPeriod(Duration.ofMillis(1));
            recording.start();
        }
        sampler.start();
        long[] start = new long[1];
        executor.submit(() -> {
            start[0] = System.nanoTime();
            for (Channel ch : channels) {
                ch.close();
            }
        }).sync();
        if (!counters.done.await(300, TimeUnit.SECONDS)) {
            throw new IllegalStateException(variant + ": the client did not see every closure: " + counters);
        }
        long clientEnd = counters.done.getNow();
        String[] done = server.await("DONE " + variant, 300).split(" ");
        sampler.stop();
        if (recording != null) {
            Path file = jfrFile.resolveSibling(variant + "-" + jfrFile.getFileName());
            recording.stop();
            recording.dump(file);
            recording.close();
            System.out.println("flight recording of the " + variant + " closures: " + file);
        }
        long serverEnd = Long.parseLong(done[2]);
        return new Round(variant, n, (clientEnd - start[0]) / 1e6, (serverEnd - start[0]) / 1e6,
                (Math.max(clientEnd, serverEnd) - start[0]) / 1e6, heapBefore, sampler.peak(), counters.events,
                counters.clean, Integer.parseInt(done[4]), Integer.parseInt(done[5]));
    }

    /**
     * Connects {@code n} TLS connections, at most {@value #IN_FLIGHT} handshakes at a time, and returns them once
     * every client handshake succeeded. Each batch of connections binds another 127.0.0.x source address, so that
     * the ports left in TIME_WAIT by earlier rounds are no concern.
     */
    static List<Channel> connect(EventLoopGroup loop, int port, SslProvider provider, String protocol, int n,
                                 boolean graceful, ChannelHandler app) throws InterruptedException {
        Bootstrap bootstrap = Net.client(loop, ch -> {
            SslHandler ssl = TlsContexts.client(provider, protocol).newHandler(ch.alloc());
            ssl.setHandshakeTimeout(HANDSHAKE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            ch.pipeline().addLast("ssl", ssl);
            if (graceful) {
                ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
            }
            ch.pipeline().addLast("app", app);
        });
        Semaphore inFlight = new Semaphore(IN_FLIGHT);
        List<Channel> channels = new ArrayList<>(n);
        List<Throwable> failures = new ArrayList<>();
        InetSocketAddress remote = new InetSocketAddress(Net.LOOPBACK, port);
        for (int i = 0; i < n; i++) {
            inFlight.acquire();
            synchronized (failures) {
                if (!failures.isEmpty()) {
                    inFlight.release();
                    break;
                }
            }
            if (i % 5_000 == 0) {
                sourceAddress = sourceAddress % 250 + 1;
            }
            ChannelFuture f = bootstrap.connect(remote, new InetSocketAddress("127.0.0." + (sourceAddress + 1), 0));
            channels.add(f.channel());
            f.addListener(cf -> {
                if (!cf.isSuccess()) {
                    synchronized (failures) {
                        failures.add(cf.cause());
                    }
                    inFlight.release();
                    return;
                }
                f.channel().pipeline().get(SslHandler.class).handshakeFuture().addListener(hf -> {
                    if (!hf.isSuccess()) {
                        synchronized (failures) {
                            failures.add(hf.cause());
                        }
                    }
                    inFlight.release();
                });
            });
        }
        inFlight.acquire(IN_FLIGHT);
        inFlight.release(IN_FLIGHT);
        synchronized (failures) {
            if (!failures.isEmpty()) {
                IllegalStateException e = new IllegalStateException(failures.size() + " of " + n
                        + " connections failed; the first failure is the cause", failures.get(0));
                for (Channel ch : channels) {
                    ch.close();
                }
                throw e;
            }
        }
        return channels;
    }

    /** Counts, on the client's event loop, the closed channels and the close events. */
    @ChannelHandler.Sharable
    private static final class ClientCounters extends ChannelInboundHandlerAdapter {
        final Promise<Long> done;
        private final int target;
        private final boolean graceful;
        int closed;
        int events;
        int clean;

        ClientCounters(Promise<Long> done, int target, boolean graceful) {
            this.done = done;
            this.target = target;
            this.graceful = graceful;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ctx.channel().closeFuture().addListener(f -> {
                closed++;
                check();
            });
            ctx.fireChannelActive();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                events++;
                if (((TlsCloseEvent) evt).isClean()) {
                    clean++;
                }
                check();
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // resets at closure, Netty alone: expected
        }

        private void check() {
            if (closed >= target && (!graceful || events >= target)) {
                done.trySuccess(System.nanoTime());
            }
        }

        @Override
        public String toString() {
            return "closed " + closed + ", events " + events + " of " + target;
        }
    }

    /** Samples the heap's used size every millisecond and keeps the peak. */
    private static final class HeapSampler implements Runnable {
        private final MemoryMXBean memory;
        private final Thread thread;
        private volatile boolean running = true;
        private volatile long peak;

        HeapSampler(MemoryMXBean memory) {
            this.memory = memory;
            this.thread = new Thread(this, "heap-sampler");
            this.thread.setDaemon(true);
        }

        void start() {
            peak = memory.getHeapMemoryUsage().getUsed();
            thread.start();
        }

        @Override
        public void run() {
            while (running) {
                peak = Math.max(peak, memory.getHeapMemoryUsage().getUsed());
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        void stop() throws InterruptedException {
            running = false;
            thread.join();
            peak = Math.max(peak, memory.getHeapMemoryUsage().getUsed());
        }

        long peak() {
            return peak;
        }
    }
}
