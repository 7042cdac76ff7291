package io.github.gracefultls.benchmarks;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import java.util.concurrent.Callable;
import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Promise;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Close latency against round-trip time: the time from {@code close()} to the completion of its promise, on the
 * client, through a {@link DelayRelay} that adds half the RTT to each direction (RTT 0: straight to the server on
 * loopback). Two closers alternate on fresh connections, ABBA:
 *
 * <ul>
 *   <li>{@code graceful}: {@link GracefulTlsCloseHandler}, SHUT_RDWR: our {@code close_notify}, the peer's, then the
 *       transport closes. The physical limit is one RTT.</li>
 *   <li>{@code netty}: {@code SslHandler} alone with {@code setCloseNotifyReadTimeout(3 s)}: Netty's own close that
 *       waits for the peer's {@code close_notify} too.</li>
 * </ul>
 *
 * <p>The server is the same for both: {@code SslHandler} and {@code GracefulTlsCloseHandler} with its default
 * {@code PeerClosePolicy.CLOSE}, which answers a {@code close_notify} on every engine, then closes. Each connection
 * first does a one-byte echo, so that the handshake's last records are out of the way when the close begins.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.github.gracefultls.benchmarks.CloseLatency \
 *     [--rtt 0,10,50] [--closures 40] [--provider OPENSSL] [--protocol TLSv1.3] [--chart docs/close-latency.png]
 * </pre>
 */
@Command(name = "CloseLatency", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Close latency against RTT: GracefulTlsCloseHandler close() and SslHandler's own close.")
public final class CloseLatency implements Callable<Integer> {

    static final String GRACEFUL = "graceful";
    static final String NETTY = "netty";

    /**
     * Latencies in ms at one RTT, per closer, how many closures of each were not clean, and the round trips of the
     * one-byte echo that preceded each closure (the RTT as the connections saw it, relay and TLS included).
     */
    record Point(int rttMillis, List<Double> graceful, List<Double> netty, int gracefulUnclean, int nettyUnclean,
                 List<Double> echo) {
        double ratio() {
            return Stats.of(graceful).median() / Stats.of(netty).median();
        }

        boolean goalMet() {
            return Stats.of(graceful).median() <= rttMillis + 2.0;
        }
    }

    @Option(names = "--quick", description = "A short run: RTT 0,10 and 4 closures unless given.")
    private boolean quick;

    @Option(names = "--rtt", paramLabel = "MS", split = ",",
            description = "Round-trip times to add, in ms. Default: 0,10,50 (--quick: 0,10).")
    private List<Integer> rtts;

    @Option(names = "--closures", paramLabel = "N", description = "Closures per closer and RTT. Default: 40 (--quick: 4).")
    private Integer closures;

    @Mixin
    private Cli.OneTls tls;

    @Option(names = "--chart", paramLabel = "PNG", description = "Also draw the results as a PNG chart.")
    private Path chart;

    private CloseLatency() {
    }

    public static void main(String[] args) {
        Cli.run(new CloseLatency(), args);
    }

    @Override
    public Integer call() throws Exception {
        List<Integer> rtts = this.rtts != null ? this.rtts : quick ? List.of(0, 10) : List.of(0, 10, 50);
        int closures = this.closures != null ? this.closures : quick ? 4 : 40;
        System.out.println("# CloseLatency: " + Env.describe());
        List<Point> points = run(tls.provider, tls.protocol, rtts, closures);
        print(tls.provider.name() + " " + tls.protocol, points);
        if (chart != null) {
            LatencyChart.write(chart, tls.provider.name() + " " + tls.protocol, points);
            System.out.println("chart: " + chart);
        }
        System.out.println("# done, " + Env.loadAverage());
        return 0;
    }

    static void print(String title, List<Point> points) {
        System.out.println(title + ": close() to close promise, ms");
        System.out.println("  RTT  closer    n   median   p10      p90      min      max     unclean");
        for (Point p : points) {
            row(p.rttMillis(), GRACEFUL, p.graceful(), p.gracefulUnclean());
            row(p.rttMillis(), NETTY, p.netty(), p.nettyUnclean());
            row(p.rttMillis(), "echo", p.echo(), 0);
            double median = Stats.of(p.graceful()).median();
            System.out.printf(Locale.ROOT, "  RTT %d ms: graceful/netty %.3f; graceful median - RTT = %+.3f ms "
                    + "(goal <= +2 ms: %s)%n", p.rttMillis(), p.ratio(), median - p.rttMillis(),
                    p.goalMet() ? "met" : "MISSED");
        }
    }

    private static void row(int rtt, String closer, List<Double> values, int unclean) {
        Stats s = Stats.of(values);
        System.out.printf(Locale.ROOT, "  %3d  %-8s %3d  %7.3f  %7.3f  %7.3f  %7.3f  %7.3f  %d%n", rtt, closer, s.n(),
                s.median(), s.p10(), s.p90(), s.min(), s.max(), unclean);
    }

    static List<Point> run(SslProvider provider, String protocol, List<Integer> rttsMillis, int closures)
            throws InterruptedException {
        EventLoopGroup boss = Net.group("latency-boss");
        EventLoopGroup serverLoop = Net.group("latency-server");
        EventLoopGroup relayLoop = Net.group("latency-relay");
        EventLoopGroup clientLoop = Net.group("latency-client");
        try {
            Channel server = Net.server(boss, serverLoop, ch -> {
                ch.pipeline().addLast("ssl", TlsContexts.server(provider, protocol).newHandler(ch.alloc()));
                ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                ch.pipeline().addLast("echo", new Echo());
                ch.pipeline().addLast("quiet", Net.Quiet.INSTANCE);
            });
            // Warm-up, not counted: the JIT and the TLS contexts, both closers.
            for (int i = 0; i < 20; i++) {
                closeOnce(clientLoop, Net.port(server), provider, protocol, i % 2 == 0);
            }
            List<Point> points = new ArrayList<>();
            for (int rtt : rttsMillis) {
                DelayRelay relay = rtt == 0 ? null
                        : new DelayRelay(relayLoop, Net.port(server), TimeUnit.MICROSECONDS.toNanos(rtt * 500L));
                int port = relay == null ? Net.port(server) : relay.port();
                Map<Boolean, List<Double>> latencies = new LinkedHashMap<>();
                latencies.put(true, new ArrayList<>());
                latencies.put(false, new ArrayList<>());
                int[] unclean = new int[2];
                List<Double> echo = new ArrayList<>();
                for (int i = 0; i < closures; i++) {
                    boolean gracefulFirst = (i % 2) == 0; // ABBA
                    for (int k = 0; k < 2; k++) {
                        boolean graceful = gracefulFirst == (k == 0);
                        Closure c = closeOnce(clientLoop, port, provider, protocol, graceful);
                        latencies.get(graceful).add(c.millis);
                        echo.add(c.echoMillis);
                        if (!c.clean) {
                            unclean[graceful ? 0 : 1]++;
                        }
                    }
                }
                if (relay != null) {
                    relay.close();
                }
                points.add(new Point(rtt, latencies.get(true), latencies.get(false), unclean[0], unclean[1], echo));
            }
            server.close().syncUninterruptibly();
            return points;
        } finally {
            Net.shutdown(clientLoop, relayLoop, serverLoop, boss);
        }
    }

    private record Closure(double millis, boolean clean, double echoMillis) {
    }

    /** Connects, handshakes, echoes one byte, then closes on the event loop and times the close promise. */
    private static Closure closeOnce(EventLoopGroup clientLoop, int port, SslProvider provider, String protocol,
                                     boolean graceful) throws InterruptedException {
        Promise<Void> echoed = clientLoop.next().newPromise();
        Client client = new Client(echoed);
        SslHandler[] ssl = new SslHandler[1];
        Channel ch = Net.client(clientLoop, c -> {
            ssl[0] = TlsContexts.client(provider, protocol).newHandler(c.alloc());
            if (!graceful) {
                ssl[0].setCloseNotifyReadTimeout(3, TimeUnit.SECONDS);
            }
            c.pipeline().addLast("ssl", ssl[0]);
            if (graceful) {
                c.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
            }
            c.pipeline().addLast("client", client);
        }).connect(Net.LOOPBACK, port).sync().channel();
        if (!echoed.await(30, TimeUnit.SECONDS) || !echoed.isSuccess()) {
            throw new IllegalStateException("no echo: " + echoed.cause());
        }
        Promise<double[]> timed = clientLoop.next().newPromise();
        ch.eventLoop().execute(() -> {
            long start = System.nanoTime();
            ch.close().addListener(f -> timed.trySuccess(new double[] {(System.nanoTime() - start) / 1e6}));
        });
        if (!timed.await(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("close() did not complete");
        }
        boolean clean = graceful
                ? client.event != null && client.event.isClean()
                : ssl[0].sslCloseFuture().isSuccess();
        return new Closure(timed.getNow()[0], clean, client.echoNanos / 1e6);
    }

    /** The client's application: sends one byte once the handshake succeeded, and waits for its echo. */
    private static final class Client extends ChannelInboundHandlerAdapter {
        private final Promise<Void> echoed;
        volatile TlsCloseEvent event;
        private long echoStart;
        volatile long echoNanos;

        Client(Promise<Void> echoed) {
            this.echoed = echoed;
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof SslHandshakeCompletionEvent) {
                if (((SslHandshakeCompletionEvent) evt).isSuccess()) {
                    echoStart = System.nanoTime();
                    ctx.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {42}));
                } else {
                    echoed.tryFailure(((SslHandshakeCompletionEvent) evt).cause());
                }
            } else if (evt instanceof TlsCloseEvent) {
                event = (TlsCloseEvent) evt;
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ReferenceCountUtil.release(msg);
            if (echoNanos == 0) {
                echoNanos = System.nanoTime() - echoStart;
            }
            echoed.trySuccess(null);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            echoed.tryFailure(cause);
        }
    }

    /** The server's application: echoes what it reads. */
    private static final class Echo extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf) {
                ctx.writeAndFlush(msg);
            } else {
                ReferenceCountUtil.release(msg);
            }
        }
    }
}
