package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.faults.FaultRig.Transport;
import io.github.gracefultls.testing.LeakDetectionExtension;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.Wire;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Load soak over loopback: many concurrent TLS connections to servers with {@link GracefulTlsCloseHandler}, each
 * ended by a behaviour the client picks at random and announces in one byte, so that the expected outcome of every
 * connection is known. Every outcome count must match the injected count exactly; no leak, no channel left open, no
 * event loop blocked. Writes {@code target/soak-report.md}.
 *
 * <p>Short by default ({@code soak.seconds}=60, {@code soak.concurrency}=500); the Maven profile {@code soak} runs
 * the full version (600 s, 10,000 concurrent connections; needs {@code ulimit -n} above 2 x 10,000 + some).
 */
class SoakTest {

    static final int SECONDS = Integer.getInteger("soak.seconds", 60);
    static final int CONCURRENCY = Integer.getInteger("soak.concurrency", 500);
    /** New connections per second. */
    static final int RATE = Integer.getInteger("soak.rate", 200);
    /** Longest random time a connection stays open before its behaviour. */
    static final int DWELL_MILLIS = Integer.getInteger("soak.dwellMillis", 1500);
    static final Duration DEADLINE = Duration.ofSeconds(2);
    /** Longest tolerated delay of a probe task on an event loop. */
    static final long BLOCKED_MILLIS = 1000;

    /** The behaviours; the server learns the client's from its first byte. */
    enum Behaviour {
        LOCAL_CLEAN('L', TlsCloseStatus.CLOSE_NOTIFY_RECEIVED),
        PEER_CLEAN('P', TlsCloseStatus.CLOSE_NOTIFY_RECEIVED),
        SILENT('S', TlsCloseStatus.TIMED_OUT),
        FIN('F', TlsCloseStatus.TRUNCATED),
        FIN_IN_RECORD('M', TlsCloseStatus.TRUNCATED),
        RESET('R', TlsCloseStatus.TRUNCATED);

        final char code;
        final TlsCloseStatus expected;

        Behaviour(char code, TlsCloseStatus expected) {
            this.code = code;
            this.expected = expected;
        }

        static Behaviour of(int code) {
            for (Behaviour b : values()) {
                if (b.code == code) {
                    return b;
                }
            }
            throw new IllegalArgumentException("code " + code);
        }

        boolean serverCloses() {
            return this == LOCAL_CLEAN || this == SILENT;
        }
    }

    private final Map<Behaviour, AtomicLong> injected = new EnumMap<>(Behaviour.class);
    private final Map<Behaviour, Map<TlsCloseStatus, AtomicLong>> outcomes = new EnumMap<>(Behaviour.class);
    private final AtomicLong unexpected = new AtomicLong();
    private final AtomicLong exceptionsAtTail = new AtomicLong();
    private final AtomicLong connectFailures = new AtomicLong();
    private final AtomicLong maxProbeDelayNanos = new AtomicLong();
    private final AtomicLong maxProbeDelayAfterWarmupNanos = new AtomicLong();
    /** Probe delays in the first seconds (class loading, JIT, first handshakes) are reported apart. */
    static final long WARMUP_NANOS = TimeUnit.SECONDS.toNanos(3);
    private volatile long probesStarted;
    private final AtomicLong live = new AtomicLong();
    private final AtomicLong peak = new AtomicLong();
    private final List<String> mismatches = java.util.Collections.synchronizedList(new ArrayList<>());

    @Test
    void soak() throws Exception {
        long maxFds = maxFileDescriptors();
        assertThat(2L * CONCURRENCY + 200).as("open files needed (ulimit -n is %s)", maxFds).isLessThan(maxFds);
        for (Behaviour b : Behaviour.values()) {
            injected.put(b, new AtomicLong());
            Map<TlsCloseStatus, AtomicLong> m = new ConcurrentHashMap<>();
            for (TlsCloseStatus s : TlsCloseStatus.values()) {
                m.put(s, new AtomicLong());
            }
            outcomes.put(b, m);
        }
        Transport transport = Transport.NIO;
        EventLoopGroup serverGroup = transport.newGroup(2);
        EventLoopGroup clientGroup = transport.newGroup(2);
        ChannelGroup serverChannels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        ChannelGroup clientChannels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        List<ScheduledFuture<?>> probes = new ArrayList<>();
        Semaphore slots = new Semaphore(CONCURRENCY);
        long connections = 0;
        System.gc();
        long heapBefore = usedHeap();
        long start = System.nanoTime();
        try {
            probesStarted = System.nanoTime();
            for (EventLoopGroup g : List.of(serverGroup, clientGroup)) {
                for (EventExecutor e : g) {
                    probes.add(startProbe((EventLoop) e));
                }
            }
            List<Object[]> servers = new ArrayList<>();
            for (Tls.Provider p : Tls.Provider.values()) {
                for (String protocol : Tls.PROTOCOLS) {
                    Channel server = startServer(serverGroup, transport, p.sslProvider(), protocol, serverChannels);
                    servers.add(new Object[] {p.sslProvider(), protocol, server.localAddress(), server});
                }
            }
            long end = start + TimeUnit.SECONDS.toNanos(SECONDS);
            long interval = TimeUnit.SECONDS.toNanos(1) / RATE;
            long next = System.nanoTime();
            while (System.nanoTime() < end) {
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    java.util.concurrent.locks.LockSupport.parkNanos(wait); // pacing new connections, not an outcome
                }
                next += interval;
                if (!slots.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                    continue;
                }
                Object[] server = servers.get(ThreadLocalRandom.current().nextInt(servers.size()));
                Behaviour b = Behaviour.values()[ThreadLocalRandom.current().nextInt(Behaviour.values().length)];
                connections++;
                ChannelFuture cf = connect(clientGroup, transport, (SslProvider) server[0], (String) server[1],
                        (SocketAddress) server[2], b, clientChannels);
                peak.accumulateAndGet(live.incrementAndGet(), Math::max);
                cf.channel().closeFuture().addListener(x -> {
                    live.decrementAndGet();
                    slots.release();
                });
                cf.addListener(x -> {
                    if (!x.isSuccess()) {
                        connectFailures.incrementAndGet();
                    }
                });
            }
            // Every connection ends within its deadlines: wait until all slots are back.
            long drainMillis = DWELL_MILLIS + 4 * DEADLINE.toMillis() + 30_000;
            boolean allEnded = slots.tryAcquire(CONCURRENCY, drainMillis, TimeUnit.MILLISECONDS);
            long totalEvents = outcomes.values().stream().flatMap(m -> m.values().stream())
                    .mapToLong(AtomicLong::get).sum();
            long injectedTotal = injected.values().stream().mapToLong(AtomicLong::get).sum();
            // The server side of a connection may conclude a moment after the client's channel closed.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (totalEvents < injectedTotal && System.nanoTime() < deadline) {
                Thread.onSpinWait();
                totalEvents = outcomes.values().stream().flatMap(m -> m.values().stream())
                        .mapToLong(AtomicLong::get).sum();
            }
            for (ScheduledFuture<?> p : probes) {
                p.cancel(false);
            }
            for (Object[] s : servers) {
                ((Channel) s[3]).close().sync();
            }
            long open = serverChannels.stream().filter(Channel::isOpen).count()
                    + clientChannels.stream().filter(Channel::isOpen).count();
            long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            List<String> leaks = LeakDetectionExtension.collectLeaks();
            System.gc();
            long heapAfter = usedHeap();
            String report = report(connections, elapsedMs, open, leaks.size(), heapBefore, heapAfter);
            System.out.println(report);
            Path out = Path.of(System.getProperty("interop.target", "target"), "soak-report.md");
            Files.createDirectories(out.getParent());
            Files.writeString(out, report, StandardCharsets.UTF_8);

            assertThat(allEnded).as("all connections ended within %d ms (%d still open)", drainMillis, live.get())
                    .isTrue();
            assertThat(connectFailures.get()).as("connect failures").isZero();
            assertThat(mismatches).as("outcomes differing from the injected behaviour").isEmpty();
            for (Behaviour b : Behaviour.values()) {
                assertThat(outcomes.get(b).get(b.expected).get()).as("%s outcomes", b)
                        .isEqualTo(injected.get(b).get());
            }
            assertThat(totalEvents).isEqualTo(injectedTotal);
            assertThat(exceptionsAtTail.get()).as("exceptions at the tail").isZero();
            assertThat(open).as("channels left open").isZero();
            assertThat(TimeUnit.NANOSECONDS.toMillis(maxProbeDelayAfterWarmupNanos.get()))
                    .as("max event loop delay after warm-up")
                    .isLessThan(BLOCKED_MILLIS);
        } finally {
            serverChannels.close().awaitUninterruptibly(10, TimeUnit.SECONDS);
            clientChannels.close().awaitUninterruptibly(10, TimeUnit.SECONDS);
            serverGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
            clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
        }
    }

    private String report(long connections, long elapsedMs, long open, int leaks, long heapBefore, long heapAfter) {
        StringBuilder r = new StringBuilder();
        r.append("# Soak report\n\n");
        r.append(String.format("- %,d TLS connections in %.1f s, at most %,d concurrent (peak %,d), %d new/s (NIO, "
                + "JDK/OPENSSL x TLSv1.2/1.3, deadlines %d ms)%n", connections, elapsedMs / 1000.0, CONCURRENCY,
                peak.get(), RATE, DEADLINE.toMillis()));
        r.append("- leaks: ").append(leaks).append('\n');
        r.append("- channels left open: ").append(open).append('\n');
        r.append("- connect failures: ").append(connectFailures.get()).append('\n');
        r.append("- exceptions at the pipeline tail: ").append(exceptionsAtTail.get()).append('\n');
        long afterWarmup = TimeUnit.NANOSECONDS.toMillis(maxProbeDelayAfterWarmupNanos.get());
        r.append(String.format("- event loops (4): max delay of a 10 ms probe task %d ms after the first %d s, %d ms "
                + "overall; blocked (>= %d ms after warm-up): %s%n", afterWarmup,
                TimeUnit.NANOSECONDS.toSeconds(WARMUP_NANOS), TimeUnit.NANOSECONDS.toMillis(maxProbeDelayNanos.get()),
                BLOCKED_MILLIS, afterWarmup >= BLOCKED_MILLIS ? "YES" : "0"));
        r.append(String.format("- heap used: %,d KiB before, %,d KiB after (after GC)%n", heapBefore / 1024,
                heapAfter / 1024));
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

    private ScheduledFuture<?> startProbe(EventLoop loop) {
        long period = TimeUnit.MILLISECONDS.toNanos(10);
        long[] expectedAt = {System.nanoTime() + period};
        return loop.scheduleAtFixedRate(() -> {
            long now = System.nanoTime();
            long delay = now - expectedAt[0];
            expectedAt[0] += period;
            if (expectedAt[0] < now) {
                expectedAt[0] = now + period; // skipped periods count once
            }
            maxProbeDelayNanos.accumulateAndGet(delay, Math::max);
            if (now - probesStarted > WARMUP_NANOS) {
                maxProbeDelayAfterWarmupNanos.accumulateAndGet(delay, Math::max);
            }
        }, period, period, TimeUnit.NANOSECONDS);
    }

    private Channel startServer(EventLoopGroup group, Transport transport, SslProvider provider, String protocol,
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
                        ch.pipeline().addLast("ssl", Tls.serverContext(provider, protocol).newHandler(ch.alloc()));
                        ch.pipeline().addLast("tls-close", GracefulTlsCloseHandler.builder()
                                .closeNotifyReadTimeout(DEADLINE).closeNotifyFlushTimeout(DEADLINE)
                                .halfCloseTimeout(DEADLINE).build());
                        ch.pipeline().addLast("app", new ServerApp());
                    }
                })
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
    }

    /** Reads the client's behaviour, acknowledges it, closes where the behaviour says so, counts the outcome. */
    private final class ServerApp extends ChannelInboundHandlerAdapter {
        private Behaviour behaviour;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            try {
                if (behaviour == null && msg instanceof ByteBuf && ((ByteBuf) msg).isReadable()) {
                    behaviour = Behaviour.of(((ByteBuf) msg).getByte(((ByteBuf) msg).readerIndex()));
                    if (behaviour.serverCloses()) {
                        ctx.channel().close();
                    } else {
                        ctx.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {'k'}));
                    }
                }
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent) {
                TlsCloseEvent e = (TlsCloseEvent) evt;
                if (behaviour == null) {
                    mismatches.add("event before the behaviour byte: " + e);
                } else {
                    outcomes.get(behaviour).get(e.status()).incrementAndGet();
                    if (e.status() != behaviour.expected && mismatches.size() < 20) {
                        mismatches.add(behaviour + " -> " + e + " " + ctx.pipeline().get(SslHandler.class).engine()
                                .getSession().getProtocol() + " " + ctx.pipeline().get(SslHandler.class).engine()
                                .getClass().getSimpleName());
                    }
                }
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            exceptionsAtTail.incrementAndGet();
            ctx.close();
        }
    }

    private ChannelFuture connect(EventLoopGroup group, Transport transport, SslProvider provider, String protocol,
                                  SocketAddress address, Behaviour b, ChannelGroup channels) {
        Wire wire = new Wire();
        return new Bootstrap()
                .group(group)
                .channel(transport.channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, false)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        channels.add(ch);
                        SslHandler ssl = Tls.clientContext(provider, protocol).newHandler(ch.alloc());
                        ch.pipeline().addLast("wire", wire);
                        ch.pipeline().addLast("ssl", ssl);
                        if (b == Behaviour.LOCAL_CLEAN || b == Behaviour.PEER_CLEAN) {
                            // Answers the server's close_notify on every engine (JDK TLS 1.3 does not by itself).
                            // Not on the others: a FIN under it would log a warning each time.
                            ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                        }
                        ch.pipeline().addLast("client", new ClientApp(b, wire, ssl));
                    }
                })
                .connect(address);
    }

    /** After a random dwell, announces its behaviour; then, once acknowledged, acts it out. */
    private final class ClientApp extends ChannelInboundHandlerAdapter {
        private final Behaviour behaviour;
        private final Wire wire;
        private final SslHandler ssl;

        ClientApp(Behaviour behaviour, Wire wire, SslHandler ssl) {
            this.behaviour = behaviour;
            this.wire = wire;
            this.ssl = ssl;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ssl.handshakeFuture().addListener(f -> {
                if (!f.isSuccess()) {
                    connectFailures.incrementAndGet();
                    ctx.close();
                    return;
                }
                long dwell = ThreadLocalRandom.current().nextLong(Math.max(1, DWELL_MILLIS));
                ctx.executor().schedule(() -> {
                    injected.get(behaviour).incrementAndGet();
                    if (behaviour == Behaviour.SILENT) {
                        wire.deafThen(null);
                    }
                    ctx.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {(byte) behaviour.code}));
                }, dwell, TimeUnit.MILLISECONDS);
            });
            ctx.fireChannelActive();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ReferenceCountUtil.release(msg);
            switch (behaviour) {
                case PEER_CLEAN:
                    ctx.channel().close();
                    break;
                case FIN:
                    wire.fin();
                    break;
                case FIN_IN_RECORD:
                    wire.writeRaw(new byte[] {23, 3, 3, 0, 64, 1, 2, 3}).addListener(x -> wire.fin());
                    break;
                case RESET:
                    wire.reset();
                    break;
                default:
                    break;
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof TlsCloseEvent || evt instanceof io.netty.handler.ssl.SslCloseCompletionEvent) {
                ctx.channel().close(); // whatever happened, this client is done
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    private static long usedHeap() {
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    private static long maxFileDescriptors() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.UnixOperatingSystemMXBean) {
            return ((com.sun.management.UnixOperatingSystemMXBean) os).getMaxFileDescriptorCount();
        }
        return Long.MAX_VALUE;
    }
}
