package io.github.gracefultls.benchmarks;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import java.util.concurrent.Callable;
import io.github.gracefultls.GracefulTlsCloseHandler;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslProvider;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The data-path ratio of {@link DataPathBenchmark}, measured in pairs: the same operation (one message client to
 * server through real {@code SslHandler}s on {@code EmbeddedChannel}s) on two pipelines that live side by side in
 * one JVM, "without" ({@code SslHandler} alone) and "with" (plus {@link GracefulTlsCloseHandler} on both sides).
 * After a warm-up of both, short windows alternate in ABBA order (without, with, with, without, ...), and each
 * window of "with" is divided by the "without" window next to it. The median of those ratios is the figure: the
 * drift of a shared machine (frequency, neighbours), which moves whole JMH forks, moves both sides of a pair
 * alike. {@code --control hop} puts an empty read-path handler in place of the handler, to show the harness's own
 * resolution.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.github.gracefultls.benchmarks.DataPathPaired \
 *     [--provider JDK,OPENSSL] [--sizes 64,1024,16384] [--seconds 40] [--window-ms 50] [--control none|hop]
 * </pre>
 */
@Command(name = "DataPathPaired", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Data path with and without GracefulTlsCloseHandler, in alternating windows (ABBA).")
public final class DataPathPaired implements Callable<Integer> {

    /** The ratios of one provider and size. */
    record Result(SslProvider provider, int size, Stats with, Stats without, Stats ratio) {
    }

    @Option(names = "--quick", description = "A short run: 1 s per case, 20 ms windows unless given.")
    private boolean quick;

    @Mixin
    private Cli.EachTls tls;

    @Option(names = "--sizes", paramLabel = "BYTES", split = ",", defaultValue = "64,1024,16384",
            description = "Message sizes. Default: ${DEFAULT-VALUE}.")
    private List<Integer> sizes;

    @Option(names = "--seconds", paramLabel = "N", description = "Measured seconds per case. Default: 40 (--quick: 1).")
    private Integer seconds;

    @Option(names = "--window-ms", paramLabel = "MS", description = "Window length. Default: 50 (--quick: 20).")
    private Integer windowMillis;

    @Option(names = "--control", paramLabel = "none|hop", defaultValue = "none",
            description = "hop: an empty read-path handler in place of the handler. Default: ${DEFAULT-VALUE}.")
    private Control control;

    /** What the "with" side adds ({@code --control}). */
    enum Control {
        NONE, HOP
    }

    private DataPathPaired() {
    }

    public static void main(String[] args) {
        Cli.run(new DataPathPaired(), args);
    }

    @Override
    public Integer call() {
        int seconds = this.seconds != null ? this.seconds : quick ? 1 : 40;
        int windowMillis = this.windowMillis != null ? this.windowMillis : quick ? 20 : 50;
        boolean hop = control == Control.HOP;
        System.out.println("# DataPathPaired: " + Env.describe());
        System.out.printf(Locale.ROOT, "# %s, %d s per case after %d s of warm-up, %d ms windows, B = %s%n",
                tls.protocol, seconds, warmupSeconds(seconds), windowMillis,
                hop ? "an empty read-path handler (control)" : "GracefulTlsCloseHandler");
        System.out.println("provider  size    with, ops/s: median          without, ops/s: median       "
                + "ratio with/without: median (p10 .. p90)   pairs");
        for (SslProvider provider : tls.providers) {
            for (int size : sizes) {
                print(run(provider, tls.protocol, size, seconds, windowMillis, hop));
            }
        }
        System.out.println("# done, " + Env.loadAverage());
        return 0;
    }

    static void print(Result r) {
        System.out.printf(Locale.ROOT, "%-8s %6d   %,14.0f               %,14.0f               %.4f (%.4f .. %.4f)   %d%n",
                r.provider(), r.size(), r.with().median(), r.without().median(), r.ratio().median(),
                r.ratio().p10(), r.ratio().p90(), r.ratio().n());
    }

    private static int warmupSeconds(int seconds) {
        return Math.max(1, seconds / 4);
    }

    static Result run(SslProvider provider, String protocol, int size, int seconds, int windowMillis, boolean hop) {
        Side without = new Side(provider, protocol, size, ch -> { });
        Side with = new Side(provider, protocol, size, hop
                ? ch -> ch.pipeline().addBefore("ssl", "hop", new DataPathBenchmark.Hop())
                : ch -> ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler()));
        try {
            long window = TimeUnit.MILLISECONDS.toNanos(windowMillis);
            long warmupEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(warmupSeconds(seconds));
            while (System.nanoTime() < warmupEnd) {
                without.measure(window);
                with.measure(window);
            }
            List<Double> withRates = new ArrayList<>();
            List<Double> withoutRates = new ArrayList<>();
            List<Double> ratios = new ArrayList<>();
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            boolean withFirst = false;
            while (System.nanoTime() < end) {
                double a;
                double b;
                if (withFirst) {
                    b = with.measure(window);
                    a = without.measure(window);
                } else {
                    a = without.measure(window);
                    b = with.measure(window);
                }
                withFirst = !withFirst; // ABBA: each side goes first in every other pair
                withRates.add(b);
                withoutRates.add(a);
                ratios.add(b / a);
            }
            without.check();
            with.check();
            return new Result(provider, size, Stats.of(withRates), Stats.of(withoutRates), Stats.of(ratios));
        } finally {
            without.release();
            with.release();
        }
    }

    /** One pipeline pair and its payload. */
    private static final class Side {
        private final EmbeddedTlsPair pair;
        private final ByteBuf payload;

        Side(SslProvider provider, String protocol, int size, Consumer<EmbeddedChannel> init) {
            pair = new EmbeddedTlsPair(TlsContexts.client(provider, protocol), TlsContexts.server(provider, protocol),
                    init, init).handshake();
            byte[] bytes = new byte[size];
            ThreadLocalRandom.current().nextBytes(bytes);
            payload = ByteBufAllocator.DEFAULT.directBuffer(size).writeBytes(bytes);
            op();
        }

        private void op() {
            EmbeddedChannel client = pair.client;
            client.writeAndFlush(payload.retainedDuplicate(), client.voidPromise());
            EmbeddedTlsPair.forward(client, pair.server);
        }

        /** Runs the operation for about {@code windowNanos}; returns operations per second. */
        double measure(long windowNanos) {
            long start = System.nanoTime();
            long deadline = start + windowNanos;
            long ops = 0;
            long now;
            do {
                for (int i = 0; i < 16; i++) {
                    op();
                }
                ops += 16;
                now = System.nanoTime();
            } while (now < deadline);
            return ops * 1e9 / (now - start);
        }

        void check() {
            pair.client.checkException();
            pair.server.checkException();
            if (pair.serverSink.messages == 0) {
                throw new IllegalStateException("no message reached the server");
            }
        }

        void release() {
            payload.release();
            pair.release();
        }
    }
}
