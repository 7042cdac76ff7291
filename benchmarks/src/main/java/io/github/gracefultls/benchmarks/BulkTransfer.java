package io.github.gracefultls.benchmarks;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import java.util.concurrent.Callable;
import io.github.gracefultls.GracefulTlsCloseHandler;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Promise;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Bulk transfer over epoll sockets on loopback: the client sends {@code --bytes} (default 1 GiB) to the server
 * through TLS, with and without {@link GracefulTlsCloseHandler} on both ends, in alternating runs (ABBA order, so
 * that a drift of the machine's speed hits both alike). The figure is the ratio of the median throughputs
 * with/without. Not JMH: one run moves a gigabyte through two event loops and the kernel.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.github.gracefultls.benchmarks.BulkTransfer \
 *     [--bytes 1g] [--runs 11] [--provider OPENSSL,JDK] [--protocol TLSv1.3] [--control hop|same] [--pin]
 *     [--no-half-closure] [--quick]
 * </pre>
 *
 * <p>With {@code --pin}, the client's event loop runs on CPU 0 and the server's on CPU 1 ({@code taskset}), so that
 * the scheduler cannot move them between cores run by run. On the 2-vCPU machine of docs/BENCHMARKS.md this did not
 * narrow the spread of the runs.
 */
@Command(name = "BulkTransfer", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Bulk transfer throughput and event-loop CPU, with and without GracefulTlsCloseHandler.")
public final class BulkTransfer implements Callable<Integer> {

    private static final int CHUNK = 64 * 1024;
    private static final AttributeKey<Promise<Long>> DONE = AttributeKey.valueOf("bulk-done");
    private static final AttributeKey<Long> EXPECTED = AttributeKey.valueOf("bulk-expected");
    private static final AttributeKey<long[]> RECEIVED = AttributeKey.valueOf("bulk-received");
    private static final AttributeKey<String> ACCEPTED = AttributeKey.valueOf("bulk-accepted");

    /**
     * Throughputs in MiB/s of one provider, and the CPU time both event loop threads spent per MiB (user and system,
     * from the handshake's end to the server's last read), in microseconds.
     */
    record Result(String provider, String protocol, long bytes, List<Double> withHandler, List<Double> without,
                  List<Double> cpuWith, List<Double> cpuWithout) {
        double ratio() {
            return Stats.of(withHandler).median() / Stats.of(without).median();
        }

        /** CPU time per MiB with/without, as a ratio of the medians: above 1 when the handler costs CPU. */
        double cpuRatio() {
            return Stats.of(cpuWith).median() / Stats.of(cpuWithout).median();
        }

        /** Median of the ratios of the runs paired in the order they ran. */
        double pairedRatio() {
            int n = Math.min(withHandler.size(), without.size());
            double[] r = new double[n];
            for (int i = 0; i < n; i++) {
                r[i] = withHandler.get(i) / without.get(i);
            }
            return Stats.median(r);
        }
    }

    /** What the runs "with handler" add to both pipelines ({@code --control}). */
    enum Control {
        /** The handler: the measurement itself. */
        NONE,
        /**
         * An empty handler overriding {@code channelRead} before the {@code SslHandler} instead of the handler: the
         * cost of one more context on the read path, as a control.
         */
        HOP,
        /**
         * Nothing: both sides of the comparison run the same pipeline, so the ratio shows what the harness itself
         * reads as a difference (an A/A test).
         */
        SAME
    }

    private static Control control = Control.NONE;
    /** With {@code --pin}: each side's event loop on a CPU of its own. */
    private static boolean pin;
    /** Off with {@code --no-half-closure}: then the JDK engine's handler follows no record framing. */
    private static boolean halfClosure = true;
    /** The two event loop threads (client, server) whose CPU time a run counts. */
    private static long[] loopThreads;

    private BulkTransfer() {
    }

    private static void addHandler(SocketChannel ch) {
        switch (control) {
            case HOP:
                ch.pipeline().addBefore("ssl", "hop", new DataPathBenchmark.Hop());
                break;
            case SAME:
                break;
            case NONE:
            default:
                ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                break;
        }
    }

    @Option(names = "--quick", description = "A short run: 32 MiB, 1 run, OPENSSL unless given.")
    private boolean quick;

    @Option(names = "--bytes", paramLabel = "SIZE", converter = Cli.BytesConverter.class,
            description = "Bytes per run, e.g. 32m, 1g. Default: 1g (--quick: 32m).")
    private Long bytes;

    @Option(names = "--runs", paramLabel = "N", description = "Runs per pipeline. Default: 11 (--quick: 1).")
    private Integer runs;

    @Option(names = "--provider", paramLabel = "JDK|OPENSSL", split = ",", converter = Cli.ProviderConverter.class,
            description = "TLS providers, in order. Default: OPENSSL,JDK (--quick: OPENSSL).")
    private List<SslProvider> providers;

    @Mixin
    private Cli.Protocol protocol;

    @Option(names = "--control", paramLabel = "none|hop|same", defaultValue = "none",
            description = "What \"with handler\" adds: none (the handler), hop (an empty read handler before the "
                    + "SslHandler) or same (nothing: an A/A test). Default: ${DEFAULT-VALUE}.")
    private Control controlOption;

    @Option(names = "--pin", description = "Pin each side's event loop to a CPU of its own (taskset).")
    private boolean pinOption;

    @Option(names = "--no-half-closure", description = "ALLOW_HALF_CLOSURE off on both sides.")
    private boolean noHalfClosure;

    public static void main(String[] args) {
        Cli.run(new BulkTransfer(), args);
    }

    @Override
    public Integer call() throws Exception {
        long bytes = this.bytes != null ? this.bytes : quick ? 32L << 20 : 1L << 30;
        int runs = this.runs != null ? this.runs : quick ? 1 : 11;
        System.out.println("# BulkTransfer: " + Env.describe());
        control = controlOption;
        pin = pinOption;
        halfClosure = !noHalfClosure;
        if (control == Control.HOP) {
            System.out.println("# control: \"with handler\" is an empty channelRead handler before the SslHandler");
        } else if (control == Control.SAME) {
            System.out.println("# control: \"with handler\" is the same pipeline as \"without\" (A/A)");
        }
        if (!halfClosure) {
            System.out.println("# ALLOW_HALF_CLOSURE off on both sides");
        }
        List<SslProvider> providers = this.providers != null ? this.providers
                : quick ? List.of(SslProvider.OPENSSL) : List.of(SslProvider.OPENSSL, SslProvider.JDK);
        for (SslProvider provider : providers) {
            print(run(provider, protocol.protocol, bytes, runs, !quick));
        }
        System.out.println("# done, " + Env.loadAverage());
        return 0;
    }

    static void print(Result r) {
        Stats with = Stats.of(r.withHandler());
        Stats without = Stats.of(r.without());
        System.out.printf(Locale.ROOT, "%s %s, %d MiB per run, %d runs each, MiB/s:%n", r.provider(), r.protocol(),
                r.bytes() >> 20, with.n());
        System.out.println("  with handler:    " + with.format("%.1f") + "  runs " + format(r.withHandler()));
        System.out.println("  without handler: " + without.format("%.1f") + "  runs " + format(r.without()));
        System.out.printf(Locale.ROOT, "  ratio with/without: %.4f (of the medians), %.4f (median of paired runs)%n",
                r.ratio(), r.pairedRatio());
        System.out.println("  event loop CPU, us per MiB, with:    " + Stats.of(r.cpuWith()).format("%.1f"));
        System.out.println("  event loop CPU, us per MiB, without: " + Stats.of(r.cpuWithout()).format("%.1f"));
        System.out.printf(Locale.ROOT, "  CPU per MiB with/without: %.4f (of the medians); throughput bound by it: %.4f%n",
                r.cpuRatio(), 1 / r.cpuRatio());
    }

    private static String format(List<Double> values) {
        StringBuilder sb = new StringBuilder();
        for (double v : values) {
            sb.append(sb.length() == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.0f", v));
        }
        return sb.toString();
    }

    static Result run(SslProvider provider, String protocol, long bytes, int runs, boolean warmUp)
            throws Exception {
        EventLoopGroup boss = Net.group("bulk-boss");
        EventLoopGroup serverLoop = Net.group("bulk-server");
        EventLoopGroup clientLoop = Net.group("bulk-client");
        byte[] random = new byte[CHUNK];
        ThreadLocalRandom.current().nextBytes(random);
        ByteBuf payload = ByteBufAllocator.DEFAULT.directBuffer(CHUNK).writeBytes(random);
        try {
            loopThreads = new long[] {threadId(clientLoop), threadId(serverLoop)};
            if (pin) {
                System.out.println("# pinned: client " + Net.pin(clientLoop, 0) + ", server " + Net.pin(serverLoop, 1));
            }
            Channel withServer = Net.server(boss, serverLoop, ch -> serverPipeline(ch, provider, protocol, true));
            Channel withoutServer = Net.server(boss, serverLoop,
                    ch -> serverPipeline(ch, provider, protocol, false));
            if (warmUp) {
                long warmBytes = Math.min(bytes, 256L << 20);
                transfer(clientLoop, withServer, provider, protocol, payload, warmBytes, true);
                transfer(clientLoop, withoutServer, provider, protocol, payload, warmBytes, false);
            }
            List<Double> with = new ArrayList<>();
            List<Double> without = new ArrayList<>();
            List<Double> cpuWith = new ArrayList<>();
            List<Double> cpuWithout = new ArrayList<>();
            for (int i = 0; i < runs; i++) {
                // ABBA: without, with, with, without, without, with, ...
                boolean withFirst = (i % 2) == 1;
                for (int k = 0; k < 2; k++) {
                    boolean withHandler = withFirst == (k == 0);
                    Channel server = withHandler ? withServer : withoutServer;
                    double[] run = transfer(clientLoop, server, provider, protocol, payload, bytes, withHandler);
                    (withHandler ? with : without).add(run[0]);
                    (withHandler ? cpuWith : cpuWithout).add(run[1]);
                }
            }
            withServer.close().syncUninterruptibly();
            withoutServer.close().syncUninterruptibly();
            return new Result(provider.name(), protocol, bytes, with, without, cpuWith, cpuWithout);
        } finally {
            payload.release();
            Net.shutdown(clientLoop, serverLoop, boss);
        }
    }

    private static void serverPipeline(SocketChannel ch, SslProvider provider, String protocol,
                                       boolean withHandler) {
        ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, halfClosure);
        ch.pipeline().addLast("ssl", TlsContexts.server(provider, protocol).newHandler(ch.alloc()));
        if (withHandler) {
            addHandler(ch);
        }
        ch.pipeline().addLast("count", new ChannelInboundHandlerAdapter() {
            private long received;

            @Override
            public void channelInactive(ChannelHandlerContext ctx) {
                ctx.channel().parent().attr(ACCEPTED).set(ctx.channel() + " inactive after " + received + " bytes");
                ctx.fireChannelInactive();
            }

            @Override
            public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                ctx.channel().parent().attr(ACCEPTED).set(ctx.channel() + " event " + evt + " after " + received);
                ctx.fireUserEventTriggered(evt);
            }

            @Override
            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                ctx.channel().parent().attr(ACCEPTED).set(ctx.channel() + " exception " + cause + " after "
                        + received);
                ctx.fireExceptionCaught(cause);
            }

            @Override
            public void channelRead(ChannelHandlerContext ctx, Object msg) {
                if (msg instanceof ByteBuf) {
                    received += ((ByteBuf) msg).readableBytes();
                    ctx.channel().parent().attr(RECEIVED).get()[0] = received;
                }
                ReferenceCountUtil.release(msg);
                if (received >= ctx.channel().parent().attr(EXPECTED).get()) {
                    Promise<Long> done = ctx.channel().parent().attr(DONE).get();
                    if (done != null) {
                        done.trySuccess(System.nanoTime());
                    }
                }
            }
        });
        ch.pipeline().addLast("quiet", Net.Quiet.INSTANCE);
    }

    private static long threadId(EventLoopGroup group) throws Exception {
        return group.submit(() -> Thread.currentThread().getId()).get(10, TimeUnit.SECONDS);
    }

    /** CPU time, user and system, of both event loop threads so far, in nanoseconds. */
    private static long loopCpuNanos() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        return mx.getThreadCpuTime(loopThreads[0]) + mx.getThreadCpuTime(loopThreads[1]);
    }

    /**
     * One transfer; returns its throughput in MiB/s, from the first write to the server's last read, and the CPU time
     * of both event loops over the same span, in microseconds per MiB.
     */
    private static double[] transfer(EventLoopGroup clientLoop, Channel server, SslProvider provider, String protocol,
                                   ByteBuf payload, long bytes, boolean withHandler) throws InterruptedException {
        Promise<Long> done = clientLoop.next().newPromise();
        // The accepted channel finds the promise on its parent, the server channel: one transfer at a time.
        server.attr(DONE).set(done);
        server.attr(RECEIVED).set(new long[1]);
        server.attr(EXPECTED).set(bytes);
        long[] start = new long[2];
        Channel ch = Net.client(clientLoop, c -> {
            SslHandler ssl = TlsContexts.client(provider, protocol).newHandler(c.alloc());
            c.pipeline().addLast("ssl", ssl);
            if (withHandler) {
                addHandler(c);
            }
            c.pipeline().addLast("writer", new Writer(ssl, payload, bytes, start));
            c.pipeline().addLast("quiet", Net.Quiet.INSTANCE);
        }).option(ChannelOption.ALLOW_HALF_CLOSURE, halfClosure)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(256 * 1024, 1024 * 1024))
                .connect(Net.LOOPBACK, Net.port(server)).sync().channel();
        // Generous: a gigabyte at 10 MiB/s.
        if (!done.await(60 + (bytes >> 20) / 10, TimeUnit.SECONDS)) {
            Writer w = ch.pipeline().get(Writer.class);
            throw new IllegalStateException("transfer did not complete: " + (withHandler ? "with" : "without")
                    + " handler, client " + ch + " active " + ch.isActive() + " writable " + ch.isWritable()
                    + " bytesBeforeWritable " + ch.bytesBeforeWritable() + " bytesBeforeUnwritable "
                    + ch.bytesBeforeUnwritable() + ", " + (w == null ? "no writer" : w.remaining + " bytes not written")
                    + ", server received " + server.attr(RECEIVED).get()[0] + " of " + bytes + ", server channel "
                    + server.attr(ACCEPTED).get());
        }
        long end = done.getNow();
        long cpuEnd = loopCpuNanos();
        ch.close().sync();
        double mib = bytes / (double) (1 << 20);
        return new double[] {mib / ((end - start[0]) / 1e9), (cpuEnd - start[1]) / 1e3 / mib};
    }

    /** Sends {@code bytes} as fast as the channel takes them, once the handshake succeeded. */
    private static final class Writer extends ChannelInboundHandlerAdapter {
        private final SslHandler ssl;
        private final ByteBuf payload;
        private final long[] start;
        private long remaining;
        private boolean started;

        Writer(SslHandler ssl, ByteBuf payload, long bytes, long[] start) {
            this.ssl = ssl;
            this.payload = payload;
            this.remaining = bytes;
            this.start = start;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ssl.handshakeFuture().addListener(f -> {
                if (f.isSuccess()) {
                    started = true;
                    start[1] = loopCpuNanos();
                    start[0] = System.nanoTime();
                    writeMore(ctx);
                }
            });
            ctx.fireChannelActive();
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            if (started && ctx.channel().isWritable()) {
                writeMore(ctx);
            }
            ctx.fireChannelWritabilityChanged();
        }

        private void writeMore(ChannelHandlerContext ctx) {
            Channel ch = ctx.channel();
            while (remaining > 0 && ch.isWritable()) {
                int n = (int) Math.min(CHUNK, remaining);
                ctx.write(payload.retainedSlice(0, n), ctx.voidPromise());
                remaining -= n;
            }
            ctx.flush();
        }
    }
}
