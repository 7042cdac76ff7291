package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.Soak.Behaviour;
import io.github.gracefultls.testing.LeakDetectionExtension;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.Transport;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.GlobalEventExecutor;
import org.junit.jupiter.api.Test;

import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Load soak over loopback: many concurrent TLS connections to servers with {@link GracefulTlsCloseHandler}, each
 * ended by a behaviour chosen at random, so that the expected outcome of every connection is known. Every outcome
 * count must match the injected count exactly, and every connection must have exactly its expected outcome; no
 * leak, no channel left open, in either JVM; with {@code soak.strict}, no event loop blocked either. Writes
 * {@code target/soak-report.md}.
 *
 * <p>The servers run in this JVM, the clients in a second one ({@link SoakClient}, started on this JVM's class
 * path), so that each process holds one end of each connection: 10,000 connections need about 10,100 open files
 * per process rather than 20,200 in one. This JVM holds the ground truth: it numbers every connection, chooses its
 * server and behaviour, and tells the child ({@code OPEN id server behaviour}). The child reports when it announces
 * the behaviour ({@code SENT}, the injection), failures and closures; its announcement carries the id in-band, so
 * the server matches each outcome to its connection, and the announced behaviour to the chosen one.
 *
 * <p>Short by default ({@code soak.seconds}=60, {@code soak.concurrency}=500); the Maven profile {@code soak} runs
 * the full version (600 s, 10,000 concurrent connections).
 *
 * <p>What depends on the machine's punctuality, and what not. A silent client is the one case where a timer must
 * end the closure: its connections go to servers whose deadlines are {@link #SILENT_DEADLINE}. The other behaviours
 * end by the client's act (its close_notify, FIN, reset), which a late event loop only delays: in the default build
 * their servers' deadlines are {@link #ANSWERED_DEADLINE}, far beyond any stall of a loaded machine, so that every
 * outcome still equals its injected behaviour however late the loops run, and the loops' lateness is reported, not
 * asserted. With {@code soak.strict} (the {@code soak} profile) every deadline is {@link #SILENT_DEADLINE} and the
 * loops must run less than {@link #BLOCKED_MILLIS} late: the full soak also proves that 2 shared cores carry its
 * load on time.
 */
class SoakTest {

    static final int SECONDS = Integer.getInteger("soak.seconds", 60);
    static final int CONCURRENCY = Integer.getInteger("soak.concurrency", 500);
    /** New connections per second. */
    static final int RATE = Integer.getInteger("soak.rate", 200);
    /** Longest random time a connection stays open before its behaviour. */
    static final int DWELL_MILLIS = Integer.getInteger("soak.dwellMillis", 1500);
    /**
     * Seconds over which the rate of new connections rises from a tenth of {@code soak.rate} to all of it; the
     * event loop probes count them as warm-up (JIT compilation competes with the handshakes for the 2 cores).
     * Default 10 s: a run at full rate from the start once had the clients' loops 1,297 ms late 4 s in.
     */
    static final int RAMP_SECONDS = Soak.LoopProbe.RAMP_SECONDS;
    /**
     * Asserts the event loops' punctuality and gives every server the short deadline ({@code soak.strict}, set by
     * the {@code soak} profile); by default both are only reported.
     */
    static final boolean STRICT = Boolean.getBoolean("soak.strict");
    /** The deadlines of the servers of the silent clients: the timer is what ends those closures. */
    static final Duration SILENT_DEADLINE = Duration.ofSeconds(2);
    /** The deadlines of the other servers, which the clients' acts end: 30 s by default, far from any stall. */
    static final Duration ANSWERED_DEADLINE = STRICT ? SILENT_DEADLINE : Duration.ofSeconds(30);
    /** Both sides' TLS handshake timeout: a deadline the peer must beat, so far from any stall. */
    static final long HANDSHAKE_TIMEOUT_MILLIS = 60_000;
    /** Longest tolerated delay of a probe task on an event loop (asserted under {@code soak.strict}). */
    static final long BLOCKED_MILLIS = 1000;
    /** Open files a process needs besides one per connection. */
    static final int SPARE_FILES = 200;
    /** Bound on each exchange with the client process (start, figures, exit). */
    static final long CHILD_SECONDS = 60;

    private final Map<Behaviour, AtomicLong> injected = new EnumMap<>(Behaviour.class);
    private final Map<Behaviour, Map<TlsCloseStatus, AtomicLong>> outcomes = new EnumMap<>(Behaviour.class);
    private final AtomicLong outcomesTotal = new AtomicLong();
    private final AtomicLong exceptionsAtTail = new AtomicLong();
    private final AtomicLong connectFailures = new AtomicLong();
    private final Soak.LoopProbe probe = new Soak.LoopProbe();
    /** Connections not yet complete (closed by the client and concluded by the server), by id. */
    private final Map<Integer, Connection> pending = new ConcurrentHashMap<>();
    private final AtomicLong serverLive = new AtomicLong();
    private final AtomicLong serverPeak = new AtomicLong();
    private final List<String> mismatches = Collections.synchronizedList(new ArrayList<>());
    private final List<String> failures = Collections.synchronizedList(new ArrayList<>());
    private final Semaphore slots = new Semaphore(CONCURRENCY);
    private final List<SslContext> serverContexts = new ArrayList<>();
    /** When the load began, for the time of a mismatch. */
    private volatile long loadStartNanos;
    /** Connections opened so far (written by the test thread only). */
    private volatile int connections;
    private volatile long drainTarget = Long.MAX_VALUE;
    private volatile CompletableFuture<Void> drained;

    /** One connection as this JVM knows it: the behaviour it chose, and what each side reported. */
    /** The pacing interval at {@code elapsed} into the run: longer during the ramp, down to a tenth of the rate. */
    static long rampedInterval(long interval, long elapsedNanos) {
        long ramp = TimeUnit.SECONDS.toNanos(RAMP_SECONDS);
        if (elapsedNanos >= ramp) {
            return interval;
        }
        double share = Math.max(0.1, elapsedNanos / (double) ramp);
        return (long) (interval / share);
    }

    private static final class Connection {
        final int id;
        final Behaviour chosen;
        private boolean sent;
        private boolean closed;
        private TlsCloseStatus status;

        Connection(int id, Behaviour chosen) {
            this.id = id;
            this.chosen = chosen;
        }

        synchronized void sent() {
            sent = true;
        }

        /** Returns whether the connection is complete. */
        synchronized boolean closed() {
            closed = true;
            return status != null;
        }

        /** Returns the outcome recorded before, if any (then this one is a duplicate). */
        synchronized TlsCloseStatus concluded(TlsCloseStatus s) {
            TlsCloseStatus before = status;
            if (before == null) {
                status = s;
            }
            return before;
        }

        synchronized boolean complete() {
            return closed && status != null;
        }

        @Override
        public synchronized String toString() {
            return "#" + id + " " + chosen + (sent ? " sent" : " not sent") + (closed ? ", client closed" : "")
                    + ", server outcome " + status;
        }
    }

    @Test
    void soak() throws Exception {
        long maxFds = Soak.maxFileDescriptors();
        assertThat((long) CONCURRENCY + SPARE_FILES).as("open files needed here (ulimit -n is %s)", maxFds)
                .isLessThan(maxFds);
        for (Behaviour b : Behaviour.values()) {
            injected.put(b, new AtomicLong());
            Map<TlsCloseStatus, AtomicLong> m = new ConcurrentHashMap<>();
            for (TlsCloseStatus s : TlsCloseStatus.values()) {
                m.put(s, new AtomicLong());
            }
            outcomes.put(b, m);
        }
        Path target = Path.of(System.getProperty("interop.target", "target"));
        Path soakDir = target.resolve("soak");
        // The child trusts this JVM's test CA; each JVM would generate its own.
        Path ca = TestCertificates.writePemFiles(soakDir).caCertificate();
        Transport transport = Transport.NIO;
        EventLoopGroup serverGroup = transport.newGroup(2);
        ChannelGroup serverChannels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        SoakClientProcess client = null;
        Soak.Timeline timeline = null;
        PrintStream serverLog = new PrintStream(Files.newOutputStream(soakDir.resolve("soak-servers.log")), true,
                StandardCharsets.UTF_8);
        Map<String, long[]> histogramBefore = Soak.classHistogram();
        System.gc();
        long heapBefore = Soak.usedHeap();
        try {
            client = new SoakClientProcess(ca, soakDir.resolve("soak-client.log"), this::onReport, mismatches::add);
            // One server per provider and protocol for the clients that answer, then one for the silent ones.
            List<Channel> servers = new ArrayList<>();
            List<SslContext> contexts = new ArrayList<>();
            List<String> cells = new ArrayList<>();
            for (Tls.Provider p : Tls.Provider.values()) {
                for (String protocol : Tls.PROTOCOLS) {
                    SslContext context = Tls.serverContext(p.sslProvider(), protocol); // not on a loop under load
                    serverContexts.add(context);
                    contexts.add(context);
                    cells.add(p.sslProvider().name() + " " + protocol);
                }
            }
            for (Duration deadline : List.of(ANSWERED_DEADLINE, SILENT_DEADLINE)) {
                for (int i = 0; i < contexts.size(); i++) {
                    Channel server = startServer(serverGroup, transport, contexts.get(i), deadline, serverChannels);
                    client.send(SoakClient.SERVER + " " + servers.size() + " " + cells.get(i) + " "
                            + ((InetSocketAddress) server.localAddress()).getPort());
                    servers.add(server);
                }
            }
            int cellCount = contexts.size();
            String[] ready = client.ready.get(CHILD_SECONDS, TimeUnit.SECONDS).split(" ");
            long childMaxFds = Long.parseLong(ready[2]);
            assertThat((long) CONCURRENCY + SPARE_FILES)
                    .as("open files needed in the client process (its ulimit -n is %s)", childMaxFds)
                    .isLessThan(childMaxFds);
            client.send(SoakClient.START);
            client.started.get(CHILD_SECONDS, TimeUnit.SECONDS);
            probe.start(serverGroup);
            timeline = new Soak.Timeline(probe, () -> "opened " + connections + "  in flight "
                    + (CONCURRENCY - slots.availablePermits()) + "  server channels " + serverLive.get()
                    + "  outcomes " + outcomesTotal.get(), serverLog);
            long start = System.nanoTime();
            loadStartNanos = start;
            long end = start + TimeUnit.SECONDS.toNanos(SECONDS);
            long interval = TimeUnit.SECONDS.toNanos(1) / RATE;
            long next = System.nanoTime();
            while (System.nanoTime() < end) {
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(wait); // pacing new connections, not an outcome
                }
                next += rampedInterval(interval, System.nanoTime() - start);
                if (!slots.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                    continue;
                }
                int id = connections++;
                Behaviour b = Behaviour.values()[ThreadLocalRandom.current().nextInt(Behaviour.values().length)];
                int server = ThreadLocalRandom.current().nextInt(cellCount)
                        + (b == Behaviour.SILENT ? cellCount : 0);
                pending.put(id, new Connection(id, b));
                client.send(SoakClient.OPEN + " " + id + " " + server + " " + b.code);
            }
            // Every connection ends within its deadlines: wait until the client closed them all.
            long drainMillis = DWELL_MILLIS + 4 * ANSWERED_DEADLINE.toMillis() + 30_000;
            boolean allEnded = slots.tryAcquire(CONCURRENCY, drainMillis, TimeUnit.MILLISECONDS);
            long injectedTotal = injected.values().stream().mapToLong(AtomicLong::get).sum();
            // The server side of a connection may conclude and close a moment after the client's channel closed.
            drainTarget = injectedTotal;
            drained = new CompletableFuture<>();
            checkDrained();
            boolean serversDone = awaitQuietly(drained, 30);
            long totalEvents = outcomesTotal.get();
            probe.stop();
            long peakOpenFiles = timeline.peakOpenFiles();
            timeline.close();
            for (Channel s : servers) {
                s.close().sync();
            }
            long serverOpen = serverChannels.stream().filter(Channel::isOpen).count();
            long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            client.send(SoakClient.END);
            Map<String, Long> child = client.stats.get(CHILD_SECONDS, TimeUnit.SECONDS);
            boolean childExited = client.process.waitFor(CHILD_SECONDS, TimeUnit.SECONDS);
            List<String> leaks = LeakDetectionExtension.collectLeaks();
            System.gc();
            long heapAfter = Soak.usedHeap();
            String growth = "\nHeap growth by class, servers (live objects after a full GC, end against start):\n\n"
                    + Soak.histogramGrowth(histogramBefore, Soak.classHistogram(), 12);
            Path clientGrowth = soakDir.resolve(SoakClient.HEAP_GROWTH_FILE);
            if (Files.exists(clientGrowth)) {
                growth += "\nHeap growth by class, clients:\n\n" + Files.readString(clientGrowth);
            }
            String report = report(connections, elapsedMs, client.process.pid(), maxFds, peakOpenFiles, serverOpen,
                    leaks.size(), heapBefore, heapAfter, child) + growth;
            System.out.println(report);
            Path out = target.resolve("soak-report.md");
            Files.createDirectories(out.getParent());
            Files.writeString(out, report, StandardCharsets.UTF_8);

            assertThat(allEnded).as("all connections ended within %d ms (%d still open)", drainMillis,
                    CONCURRENCY - slots.availablePermits()).isTrue();
            assertThat(connectFailures.get()).as("connect failures: %s", failures).isZero();
            assertThat(mismatches).as("outcomes differing from the injected behaviour").isEmpty();
            for (Behaviour b : Behaviour.values()) {
                assertThat(outcomes.get(b).get(b.expected).get()).as("%s outcomes", b)
                        .isEqualTo(injected.get(b).get());
            }
            assertThat(totalEvents).isEqualTo(injectedTotal);
            assertThat(serversDone).as("every server channel concluded and closed").isTrue();
            assertThat(pending.values().stream().limit(20).map(Connection::toString))
                    .as("connections without a client closure and a server outcome (%d)", pending.size())
                    .isEmpty();
            assertThat(child.get("opened")).as("connections the client opened").isEqualTo((long) connections);
            assertThat(exceptionsAtTail.get()).as("exceptions at the pipeline tail").isZero();
            assertThat(serverOpen).as("server channels left open").isZero();
            assertThat(child.get("open")).as("client channels left open").isZero();
            assertThat(leaks).as("leaks in this (server) JVM").isEmpty();
            assertThat(child.get("leaks")).as("leaks in the client JVM (see %s)", client.log).isZero();
            if (STRICT) {
                assertThat(probe.maxDelayAfterWarmupMillis()).as("max server event loop delay after warm-up")
                        .isLessThan(BLOCKED_MILLIS);
                assertThat(child.get("probeMaxAfterWarmupMillis")).as("max client event loop delay after warm-up")
                        .isLessThan(BLOCKED_MILLIS);
            }
            assertThat(childExited && client.process.exitValue() == 0)
                    .as("the client process exited with status 0 (see %s)", client.log).isTrue();
        } finally {
            if (timeline != null) {
                timeline.close();
            }
            serverLog.close();
            if (client != null) {
                client.close();
            }
            serverChannels.close().awaitUninterruptibly(10, TimeUnit.SECONDS);
            serverGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
        }
    }

    private void checkDrained() {
        CompletableFuture<Void> d = drained;
        if (d != null && serverLive.get() == 0 && outcomesTotal.get() >= drainTarget) {
            d.complete(null);
        }
    }

    private static boolean awaitQuietly(CompletableFuture<?> f, long seconds) throws Exception {
        try {
            f.get(seconds, TimeUnit.SECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        }
    }

    private String report(long connections, long elapsedMs, long childPid, long maxFds, long peakOpenFiles,
                          long serverOpen, int leaks, long heapBefore, long heapAfter, Map<String, Long> child) {
        StringBuilder r = new StringBuilder();
        r.append("# Soak report\n\n");
        r.append(String.format("- %,d TLS connections in %.1f s, at most %,d concurrent (peak %,d), %d new/s%s (NIO, "
                + "JDK/OPENSSL x TLSv1.2/1.3, deadlines %,d ms for the silent clients, %,d ms for the others)%n",
                connections, elapsedMs / 1000.0, CONCURRENCY, child.get("peak"), RATE,
                RAMP_SECONDS > 0 ? " after a " + RAMP_SECONDS + " s ramp from " + RATE / 10 : "",
                SILENT_DEADLINE.toMillis(), ANSWERED_DEADLINE.toMillis()));
        r.append(String.format("- two JVMs: servers in the test JVM (peak %,d server channels, %,d open files at most; "
                + "ulimit -n %,d), clients in a child JVM, pid %d (%,d open files at most; ulimit -n %,d)%n",
                serverPeak.get(), peakOpenFiles, maxFds, childPid, child.get("peakOpenFiles"),
                child.get("maxOpenFiles")));
        r.append(String.format("- leaks: %d (servers), %d (clients)%n", leaks, child.get("leaks")));
        r.append(String.format("- channels left open: %d (servers), %d (clients)%n", serverOpen, child.get("open")));
        r.append("- connect failures: ").append(connectFailures.get()).append('\n');
        r.append("- connections without a complete record: ").append(pending.size()).append('\n');
        r.append("- exceptions at the pipeline tail: ").append(exceptionsAtTail.get()).append('\n');
        long serverAfterWarmup = probe.maxDelayAfterWarmupMillis();
        long clientAfterWarmup = child.get("probeMaxAfterWarmupMillis");
        r.append(String.format("- event loops (%d servers, %d clients): max delay of a 10 ms probe task %d ms "
                + "(servers, at %.1f s) and %d ms (clients, at %.1f s) after the first %d s, %d and %d ms overall; "
                + "blocked (>= %d ms after warm-up): %s (%s)%n", probe.loops(), child.get("probeLoops"),
                serverAfterWarmup,
                probe.worstAtMillis() / 1000.0, clientAfterWarmup, child.get("probeWorstAtMillis") / 1000.0,
                TimeUnit.NANOSECONDS.toSeconds(Soak.LoopProbe.WARMUP_NANOS), probe.maxDelayMillis(),
                child.get("probeMaxMillis"), BLOCKED_MILLIS,
                Math.max(serverAfterWarmup, clientAfterWarmup) >= BLOCKED_MILLIS ? "YES" : "0",
                STRICT ? "asserted: soak.strict" : "reported, not asserted: the machine's punctuality, not the "
                        + "handler's; -Psoak asserts it"));
        r.append(String.format("- CPU time: %.1f s (servers' JVM), %.1f s (clients' JVM); system load average at the "
                + "end %s%n", Soak.processCpuMillis() / 1000.0, child.get("cpuMillis") / 1000.0, Soak.loadAverage()));
        r.append(String.format("- heap used (after GC): servers %,d KiB before, %,d KiB after; clients %,d KiB "
                + "before, %,d KiB after%n", heapBefore / 1024, heapAfter / 1024, child.get("heapBefore") / 1024,
                child.get("heapAfter") / 1024));
        r.append(String.format("- TLS sessions held in the contexts' session caches at the end (bounded by each "
                + "cache's size): %,d (servers), %,d (clients)%n", Soak.cachedSessions(serverContexts),
                child.get("sessionsCached")));
        r.append("\n| behaviour | injected | expected status | CLOSE_NOTIFY_RECEIVED | TIMED_OUT | TRUNCATED | FAILED |\n");
        r.append("| --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
        for (Behaviour b : Behaviour.values()) {
            Map<TlsCloseStatus, AtomicLong> m = outcomes.get(b);
            r.append(String.format("| %s | %,d | %s | %,d | %,d | %,d | %,d |%n", b, injected.get(b).get(), b.expected,
                    m.get(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED).get(), m.get(TlsCloseStatus.TIMED_OUT).get(),
                    m.get(TlsCloseStatus.TRUNCATED).get(), m.get(TlsCloseStatus.FAILED).get()));
        }
        return r.toString();
    }

    private Channel startServer(EventLoopGroup group, Transport transport, SslContext context, Duration deadline,
                                ChannelGroup channels) throws InterruptedException {
        return new ServerBootstrap()
                .group(group)
                .channel(transport.serverChannelClass())
                .option(ChannelOption.SO_BACKLOG, 4096)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        channels.add(ch);
                        serverPeak.accumulateAndGet(serverLive.incrementAndGet(), Math::max);
                        ch.closeFuture().addListener(f -> {
                            serverLive.decrementAndGet();
                            checkDrained();
                        });
                        SslHandler ssl = context.newHandler(ch.alloc());
                        ssl.setHandshakeTimeoutMillis(HANDSHAKE_TIMEOUT_MILLIS);
                        ch.pipeline().addLast("ssl", ssl);
                        ch.pipeline().addLast("tls-close", GracefulTlsCloseHandler.builder()
                                .closeNotifyReadTimeout(deadline).closeNotifyFlushTimeout(deadline)
                                .halfCloseTimeout(deadline).build());
                        ch.pipeline().addLast("app", new ServerApp());
                    }
                })
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
    }

    /**
     * Reads the client's announcement, acknowledges it, closes where the behaviour says so, counts the outcome and
     * matches it to its connection.
     */
    private final class ServerApp extends ChannelInboundHandlerAdapter {
        private final byte[] announcement = new byte[Soak.ANNOUNCEMENT_LENGTH];
        private int announced;
        private Behaviour behaviour;
        private Connection connection;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            try {
                if (behaviour == null && msg instanceof ByteBuf) {
                    ByteBuf buf = (ByteBuf) msg;
                    int n = Math.min(buf.readableBytes(), announcement.length - announced);
                    buf.getBytes(buf.readerIndex(), announcement, announced, n);
                    announced += n;
                    if (announced == announcement.length) {
                        announced(ctx);
                    }
                }
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }

        private void announced(ChannelHandlerContext ctx) {
            behaviour = Behaviour.of(announcement[0]);
            int id = Soak.announcedId(announcement);
            connection = pending.get(id);
            if (connection == null) {
                mismatches.add("announcement of an unknown connection #" + id + " (" + behaviour + ")");
            } else if (connection.chosen != behaviour) {
                mismatches.add("#" + id + " announced " + behaviour + ", chosen " + connection.chosen);
            }
            if (behaviour.serverCloses()) {
                ctx.channel().close();
            } else {
                ctx.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {'k'}));
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                conclude(ctx, (TlsCloseEvent) evt);
            }
            ctx.fireUserEventTriggered(evt);
        }

        private void conclude(ChannelHandlerContext ctx, TlsCloseEvent e) {
            if (behaviour == null) {
                mismatches.add("event before the announcement: " + e);
                return;
            }
            outcomes.get(behaviour).get(e.status()).incrementAndGet();
            if (e.status() != behaviour.expected && mismatches.size() < 20) {
                SslHandler ssl = ctx.pipeline().get(SslHandler.class);
                mismatches.add(String.format(Locale.ROOT, "at %.1f s: %s -> %s %s %s",
                        (System.nanoTime() - loadStartNanos) / 1e9, behaviour, e,
                        ssl.engine().getSession().getProtocol(), ssl.engine().getClass().getSimpleName()));
            }
            if (connection != null) {
                TlsCloseStatus before = connection.concluded(e.status());
                if (before != null) {
                    mismatches.add("#" + connection.id + ": a second outcome " + e + " after " + before);
                } else if (connection.complete()) {
                    pending.remove(connection.id);
                }
            }
            outcomesTotal.incrementAndGet();
            checkDrained();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            exceptionsAtTail.incrementAndGet();
            ctx.close();
        }
    }

    /** Handles one report of the client process (on its reader thread). */
    private void onReport(String[] f) {
        switch (f[0]) {
            case SoakClient.SENT: {
                Connection c = pending.get(Integer.parseInt(f[1]));
                Behaviour b = Behaviour.of(f[2].charAt(0));
                injected.get(b).incrementAndGet();
                if (c == null) {
                    mismatches.add("the client sent for an unknown connection #" + f[1]);
                } else {
                    c.sent();
                    if (c.chosen != b) {
                        mismatches.add("#" + f[1] + " sent " + b + ", chosen " + c.chosen);
                    }
                }
                break;
            }
            case SoakClient.FAILED:
                connectFailures.incrementAndGet();
                if (failures.size() < 20) {
                    failures.add(String.join(" ", f));
                }
                break;
            case SoakClient.CLOSED: {
                int id = Integer.parseInt(f[1]);
                Connection c = pending.get(id);
                if (c == null) {
                    mismatches.add("the client closed an unknown connection #" + id);
                } else if (c.closed()) {
                    pending.remove(id);
                }
                slots.release();
                break;
            }
            default:
                System.out.println("[soak client] " + String.join(" ", f));
                break;
        }
    }
}
