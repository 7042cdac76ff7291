package io.github.gracefultls.benchmarks;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import java.util.concurrent.Callable;
import io.github.gracefultls.GracefulTlsCloseHandler;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.AbstractScheduledEventExecutor;
import org.openjdk.jol.info.ClassLayout;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.reflect.Field;
import java.time.Duration;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Cost per idle connection of {@link GracefulTlsCloseHandler}, two ways:
 *
 * <ol>
 *   <li>JOL: the shallow size of each object the handler adds to a connection, and the sum for each layout. With a
 *       JDK engine the handler adds itself and its pipeline context. With OpenSSL, which keeps partial records in
 *       its own buffer, or with {@code ALLOW_HALF_CLOSURE}, also a {@code RecordFraming} set in front of the
 *       {@code SslHandler}'s cumulator (no pipeline context). Where that cumulator cannot be read (the module path on
 *       Netty 4.2), a transport observer and its context instead. Also, for reference, the objects a closure
 *       allocates and an {@code SslHandler}.</li>
 *   <li>Heap: {@code --connections} (default 10,000) idle TLS connections without the handler; then the handler is
 *       added to each; then replaced by one made by the builder. The difference of the used heap after a full GC,
 *       divided by the number of connections, is what the handler retains per connection. The clients are set up
 *       with {@code ALLOW_HALF_CLOSURE}; a last round turns it off first. The number of tasks
 *       scheduled on the client's event loop is read too, to check that idle channels schedule nothing. Runs for
 *       each {@code --provider} (default both, JDK then OPENSSL).</li>
 * </ol>
 *
 * <pre>
 * java -Xms2g -Xmx2g -cp benchmarks/target/benchmarks.jar io.github.gracefultls.benchmarks.ConnectionCost \
 *     [--connections 10000] [--provider JDK|OPENSSL] [--protocol TLSv1.3]
 * </pre>
 */
@Command(name = "ConnectionCost", mixinStandardHelpOptions = true, sortOptions = false,
        description = "What GracefulTlsCloseHandler costs an idle connection: object sizes, heap, scheduled tasks.")
public final class ConnectionCost implements Callable<Integer> {

    /** Shallow sizes in bytes by object, and heap per connection in bytes by pipeline. */
    record Result(SslProvider provider, Map<String, Long> shallow, int connections,
                  Map<String, Double> heapPerConnection, Map<String, Integer> scheduledTasks) {

        /** Bytes per idle connection by layout, from the shallow sizes. */
        Map<String, Long> layouts() {
            long handler = shallow.get("GracefulTlsCloseHandler");
            long context = shallow.get("DefaultChannelHandlerContext");
            Map<String, Long> layouts = new LinkedHashMap<>();
            layouts.put("the handler object alone", handler);
            layouts.put("JDK engine: handler + its context", handler + context);
            layouts.put("OpenSSL engine, or ALLOW_HALF_CLOSURE: + RecordFraming (cumulator)",
                    handler + context + shallow.get("RecordFraming"));
            layouts.put("fallback where the cumulator is unreadable: + observer + its context",
                    handler + context + shallow.get("TransportObserver") + context);
            return layouts;
        }
    }

    @Option(names = "--quick", description = "A short run: 200 connections unless given.")
    private boolean quick;

    @Option(names = "--connections", paramLabel = "N", description = "Idle connections. Default: 10000 (--quick: 200).")
    private Integer connections;

    @Mixin
    private Cli.EachTls tls;

    private ConnectionCost() {
    }

    public static void main(String[] args) {
        Cli.run(new ConnectionCost(), args);
    }

    @Override
    public Integer call() throws Exception {
        LeakCounter.install();
        System.out.println("# ConnectionCost: " + Env.describe());
        for (SslProvider provider : tls.providers) {
            print(run(provider, tls.protocol, connections != null ? connections : quick ? 200 : 10_000));
        }
        System.out.println("# done, " + Env.loadAverage());
        return 0;
    }

    static void print(Result r) {
        System.out.println("JOL shallow sizes, bytes (" + System.getProperty("java.vm.name") + ", "
                + "compressed oops " + compressedOops() + "):");
        r.shallow().forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-40s %5d%n", k, v));
        System.out.println("Per idle connection, bytes, by layout:");
        r.layouts().forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-58s %5d%n", k, v));
        System.out.printf(Locale.ROOT, "Heap after full GC over %d idle %s connections, bytes per connection "
                + "(difference to the pipeline without the handler):%n", r.connections(), r.provider());
        r.heapPerConnection().forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-40s %8.1f%n", k, v));
        System.out.println("Tasks scheduled on the client's event loop while idle:");
        r.scheduledTasks().forEach((k, v) -> System.out.printf(Locale.ROOT, "  %-40s %5d%n", k, v));
    }

    private static String compressedOops() {
        try {
            return String.valueOf(ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class)
                    .getVMOption("UseCompressedOops").getValue());
        } catch (RuntimeException e) {
            return "?";
        }
    }

    static Result run(SslProvider provider, String protocol, int connections) throws Exception {
        Map<String, Long> shallow = shallowSizes();
        Map<String, Double> perConnection = new LinkedHashMap<>();
        Map<String, Integer> scheduled = new LinkedHashMap<>();
        EventLoopGroup loop = Net.group("cost-client");
        EventLoop executor = loop.next();
        try (ServerProcess server = new ServerProcess(provider, protocol)) {
            List<Channel> channels = ClosureAtScale.connect(loop, server.nettyPort, provider, protocol, connections,
                    false, Net.Quiet.INSTANCE);
            long base = usedAfterGc();
            scheduled.put("SslHandler alone", scheduledTasks(executor));
            perConnection.put("SslHandler alone (reference: 0)", 0.0);

            add(executor, channels, GracefulTlsCloseHandler::new);
            perConnection.put("+ new GracefulTlsCloseHandler()", (usedAfterGc() - base) / (double) connections);
            scheduled.put("+ new GracefulTlsCloseHandler()", scheduledTasks(executor));
            remove(executor, channels);
            long base2 = usedAfterGc();

            GracefulTlsCloseHandler.Builder builder = GracefulTlsCloseHandler.builder()
                    .closeNotifyReadTimeout(Duration.ofSeconds(1));
            add(executor, channels, builder::build);
            perConnection.put("+ builder().closeNotifyReadTimeout(1s).build()",
                    (usedAfterGc() - base2) / (double) connections);
            scheduled.put("+ builder()...build()", scheduledTasks(executor));
            remove(executor, channels);

            // The clients half-close (ALLOW_HALF_CLOSURE, as a proxy's would); most servers do not.
            executor.submit(() -> channels.forEach(
                    ch -> ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false))).sync();
            long base3 = usedAfterGc();
            add(executor, channels, builder::build);
            perConnection.put("+ builder()...build(), without ALLOW_HALF_CLOSURE",
                    (usedAfterGc() - base3) / (double) connections);
            scheduled.put("+ builder()...build(), without half-closure", scheduledTasks(executor));
            remove(executor, channels);
            executor.submit(() -> channels.forEach(Channel::close)).sync();
            for (Channel ch : channels) {
                ch.closeFuture().sync();
            }
        } finally {
            Net.shutdown(loop);
        }
        return new Result(provider, shallow, connections, perConnection, scheduled);
    }

    private static void add(EventLoop executor, Collection<Channel> channels,
                            Supplier<GracefulTlsCloseHandler> handlers) throws InterruptedException {
        executor.submit(() -> {
            for (Channel ch : channels) {
                ch.pipeline().addAfter("ssl", "tls-close", handlers.get());
            }
        }).sync();
    }

    private static void remove(EventLoop executor, Collection<Channel> channels) throws InterruptedException {
        executor.submit(() -> {
            for (Channel ch : channels) {
                ch.pipeline().remove("tls-close");
            }
        }).sync();
    }

    /** Used heap after full collections, once it stops shrinking. */
    private static long usedAfterGc() throws InterruptedException {
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 10; i++) {
            System.gc();
            long now = memory.getHeapMemoryUsage().getUsed();
            if (now >= used) {
                return Math.min(now, used);
            }
            used = now;
        }
        return used;
    }

    /** The size of the event loop's scheduled task queue, read on the event loop (it is not public). */
    private static int scheduledTasks(EventLoop executor) throws Exception {
        Field f = AbstractScheduledEventExecutor.class.getDeclaredField("scheduledTaskQueue");
        f.setAccessible(true);
        return executor.submit(() -> {
            Collection<?> queue = (Collection<?>) f.get(executor);
            return queue == null ? 0 : queue.size();
        }).sync().getNow();
    }

    static Map<String, Long> shallowSizes() throws ClassNotFoundException {
        Map<String, Long> sizes = new LinkedHashMap<>();
        sizes.put("GracefulTlsCloseHandler", size(GracefulTlsCloseHandler.class));
        sizes.put("TransportObserver", size(Class.forName("io.github.gracefultls.TransportObserver")));
        sizes.put("RecordFraming", size(Class.forName("io.github.gracefultls.RecordFraming")));
        sizes.put("DefaultChannelHandlerContext", size(Class.forName("io.netty.channel.DefaultChannelHandlerContext")));
        sizes.put("Settings (shared by a builder's handlers)",
                size(Class.forName("io.github.gracefultls.Settings")));
        sizes.put("while closing: Closure (state machine and guard)",
                size(Class.forName("io.github.gracefultls.Closure")));
        sizes.put("at the end: TlsCloseEvent", size(Class.forName("io.github.gracefultls.TlsCloseEvent")));
        sizes.put("reference: SslHandler", size(SslHandler.class));
        sizes.put("reference: ChannelInboundHandlerAdapter", size(ChannelInboundHandlerAdapter.class));
        return sizes;
    }

    private static long size(Class<?> c) {
        return ClassLayout.parseClass(c).instanceSize();
    }

}
