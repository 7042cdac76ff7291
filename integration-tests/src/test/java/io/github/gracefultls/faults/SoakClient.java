package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.faults.Soak.Behaviour;
import io.github.gracefultls.testing.LeakDetectionExtension;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.Transport;
import io.github.gracefultls.testing.Wire;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.GlobalEventExecutor;

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.OutputStream;
import java.io.Writer;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The client side of {@link SoakTest}, in a JVM of its own, so that each process holds one end of each connection
 * (10,000 connections are 10,000 file descriptors per process instead of 20,000 in one). It opens the connections
 * the parent tells it to, each with the behaviour the parent chose, and reports what it did.
 *
 * <p>It talks over its standard streams, one line per command and per report (standard error is a log):
 * <pre>
 * &gt; READY pid max-open-files
 * &lt; SERVER index provider protocol port   one per server of the parent
 * &lt; START                                 starts the event loop probes
 * &gt; STARTED
 * &lt; OPEN id server code                    connects; after the handshake and a random dwell, announces
 *                                          code and id to the server, then acts the behaviour out
 * &gt; SENT id code                          the announcement is being written: the behaviour is injected
 * &gt; FAILED id reason                      the connection or its handshake failed
 * &gt; CLOSED id                             the client channel closed
 * &lt; END                                   no more connections; the figures follow
 * &gt; STATS key=value ...
 * &gt; BYE                                   then it exits
 * </pre>
 * The reports of one connection come in that order. When its input ends before {@code END} (the parent is gone,
 * or gave up), or its output cannot be written, it exits at once with status 3.
 */
public final class SoakClient {

    /** The clients' heap growth by class, a Markdown table written beside the CA certificate at the end. */
    static final String HEAP_GROWTH_FILE = "client-heap-growth.md";
    static final String READY = "READY";
    static final String SERVER = "SERVER";
    static final String START = "START";
    static final String STARTED = "STARTED";
    static final String OPEN = "OPEN";
    static final String SENT = "SENT";
    static final String FAILED = "FAILED";
    static final String CLOSED = "CLOSED";
    static final String END = "END";
    static final String STATS = "STATS";
    static final String BYE = "BYE";
    static final int PARENT_GONE = 3;
    /** The TLS handshake timeout, as the parent sets it for its side ({@code soak.handshakeTimeoutMillis}). */
    private static final long HANDSHAKE_TIMEOUT_MILLIS = Long.getLong("soak.handshakeTimeoutMillis", 10_000);

    private final Path caCertificate;
    private final int dwellMillis;
    private final Transport transport = Transport.NIO;
    private final BlockingQueue<String> reports = new LinkedBlockingQueue<>();
    private final Map<Integer, Server> servers = new HashMap<>();
    /** One client context per provider and protocol, whichever of their servers a connection goes to. */
    private final Map<String, SslContext> contexts = new HashMap<>();
    private final Soak.LoopProbe probe = new Soak.LoopProbe();
    private final AtomicLong live = new AtomicLong();
    private final AtomicLong peak = new AtomicLong();
    private final AtomicLong opened = new AtomicLong();
    private Soak.Timeline timeline;
    private EventLoopGroup group;
    private ChannelGroup channels;

    private SoakClient(Path caCertificate, int dwellMillis) {
        this.caCertificate = caCertificate;
        this.dwellMillis = dwellMillis;
    }

    /** Arguments: the parent's CA certificate (PEM), the longest dwell in milliseconds. */
    public static void main(String[] args) throws Exception {
        // Before anything allocates a buffer: Netty's ByteBuf leak detector must come from the recording factory.
        LeakDetectionExtension.install();
        // Only the protocol goes to standard output, unbuffered by PrintStream, which would hide a broken pipe.
        OutputStream protocol = new FileOutputStream(FileDescriptor.out);
        System.setOut(System.err);
        SoakClient client = new SoakClient(Path.of(args[0]), Integer.parseInt(args[1]));
        Thread writer = new Thread(() -> client.writeReports(protocol), "soak-client-reports");
        writer.setDaemon(true);
        writer.start();
        if (!LeakDetectionExtension.isInstalledInTime()) {
            System.err.println("soak client: the recording leak detector was installed too late");
            Runtime.getRuntime().halt(2);
        }
        try {
            client.run();
        } catch (Throwable t) {
            System.err.println("soak client: failed");
            t.printStackTrace();
            Runtime.getRuntime().halt(1);
        }
        writer.join(TimeUnit.SECONDS.toMillis(30));
        System.exit(0);
    }

    private void run() throws Exception {
        Map<String, long[]> histogramBefore = Soak.classHistogram();
        System.gc();
        long heapBefore = Soak.usedHeap();
        group = transport.newGroup(2);
        channels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        report(READY + " " + ProcessHandle.current().pid() + " " + Soak.maxFileDescriptors());
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split(" ");
            switch (f[0]) {
                case OPEN:
                    open(Integer.parseInt(f[1]), servers.get(Integer.parseInt(f[2])),
                            Behaviour.of(f[3].charAt(0)));
                    break;
                case SERVER:
                    SslProvider provider = SslProvider.valueOf(f[2]);
                    SslContext context = contexts.get(f[2] + " " + f[3]);
                    if (context == null) {
                        context = clientContext(provider, f[3]);
                        contexts.put(f[2] + " " + f[3], context);
                    }
                    servers.put(Integer.parseInt(f[1]), new Server(context,
                            new InetSocketAddress(InetAddress.getLoopbackAddress(), Integer.parseInt(f[4]))));
                    break;
                case START:
                    probe.start(group);
                    System.err.println("soak client: the load starts at uptime "
                            + ManagementFactory.getRuntimeMXBean().getUptime() + " ms");
                    timeline = new Soak.Timeline(probe, () -> "opened " + opened.get() + "  live " + live.get(),
                            System.err);
                    report(STARTED);
                    break;
                case END:
                    finish(heapBefore, histogramBefore);
                    return;
                default:
                    System.err.println("soak client: unknown command " + line);
                    break;
            }
        }
        System.err.println("soak client: end of input before " + END + ": the parent is gone; exiting");
        Runtime.getRuntime().halt(PARENT_GONE);
    }

    private void finish(long heapBefore, Map<String, long[]> histogramBefore) throws IOException {
        probe.stop();
        long peakOpenFiles = timeline == null ? Soak.openFileDescriptors() : timeline.peakOpenFiles();
        if (timeline != null) {
            timeline.close();
        }
        long open = channels.stream().filter(Channel::isOpen).count();
        channels.close().awaitUninterruptibly(10, TimeUnit.SECONDS);
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
        List<String> leaks = LeakDetectionExtension.collectLeaks();
        for (String leak : leaks) {
            System.err.println("ERROR: " + leak);
        }
        System.gc();
        long heapAfter = Soak.usedHeap();
        // Beside the parent's CA certificate, in the soak's directory: the parent adds it to its report.
        Files.writeString(caCertificate.resolveSibling(HEAP_GROWTH_FILE),
                Soak.histogramGrowth(histogramBefore, Soak.classHistogram(), 12), StandardCharsets.UTF_8);
        report(String.format("%s opened=%d leaks=%d open=%d peak=%d probeLoops=%d probeMaxMillis=%d "
                        + "probeMaxAfterWarmupMillis=%d probeWorstAtMillis=%d heapBefore=%d heapAfter=%d "
                        + "maxOpenFiles=%d peakOpenFiles=%d cpuMillis=%d sessionsCached=%d",
                STATS, opened.get(), leaks.size(), open, peak.get(), probe.loops(), probe.maxDelayMillis(),
                probe.maxDelayAfterWarmupMillis(), probe.worstAtMillis(), heapBefore, heapAfter,
                Soak.maxFileDescriptors(), peakOpenFiles, Soak.processCpuMillis(),
                Soak.cachedSessions(contexts.values())));
        report(BYE);
    }

    /** Like {@link Tls#clientContext}, but trusting the parent's test CA: each JVM generates its own. */
    private SslContext clientContext(SslProvider provider, String protocol) throws IOException {
        return Tls.clientContextBuilder(provider, protocol).trustManager(caCertificate.toFile()).build();
    }

    private void open(int id, Server server, Behaviour b) {
        opened.incrementAndGet();
        Wire wire = new Wire();
        ChannelFuture cf = new Bootstrap()
                .group(group)
                .channel(transport.channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, false)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        channels.add(ch);
                        SslHandler ssl = server.context.newHandler(ch.alloc());
                        ssl.setHandshakeTimeoutMillis(HANDSHAKE_TIMEOUT_MILLIS);
                        ch.pipeline().addLast("wire", wire);
                        ch.pipeline().addLast("ssl", ssl);
                        if (b == Behaviour.LOCAL_CLEAN || b == Behaviour.PEER_CLEAN) {
                            // Answers the server's close_notify on every engine (JDK TLS 1.3 does not by itself).
                            // Not on the others: a FIN under it would log a warning each time.
                            ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                        }
                        ch.pipeline().addLast("client", new ClientApp(id, b, wire, ssl));
                    }
                })
                .connect(server.address);
        peak.accumulateAndGet(live.incrementAndGet(), Math::max);
        cf.addListener(x -> {
            if (!x.isSuccess()) {
                report(FAILED + " " + id + " connect " + oneLine(x.cause()));
            }
        });
        cf.channel().closeFuture().addListener(x -> {
            live.decrementAndGet();
            report(CLOSED + " " + id);
        });
    }

    /** After a random dwell, announces its behaviour; then, once acknowledged, acts it out. */
    private final class ClientApp extends ChannelInboundHandlerAdapter {
        private final int id;
        private final Behaviour behaviour;
        private final Wire wire;
        private final SslHandler ssl;

        ClientApp(int id, Behaviour behaviour, Wire wire, SslHandler ssl) {
            this.id = id;
            this.behaviour = behaviour;
            this.wire = wire;
            this.ssl = ssl;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ssl.handshakeFuture().addListener(f -> {
                if (!f.isSuccess()) {
                    report(FAILED + " " + id + " handshake " + oneLine(f.cause()));
                    ctx.close();
                    return;
                }
                long dwell = ThreadLocalRandom.current().nextLong(Math.max(1, dwellMillis));
                ctx.executor().schedule(() -> {
                    report(SENT + " " + id + " " + behaviour.code);
                    if (behaviour == Behaviour.SILENT) {
                        wire.deafThen(null);
                    }
                    ctx.writeAndFlush(Unpooled.wrappedBuffer(Soak.announcement(behaviour, id)));
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
            if (evt instanceof TlsCloseEvent || evt instanceof SslCloseCompletionEvent) {
                ctx.channel().close(); // whatever happened, this client is done
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** Queues a report; the event loops never write to the pipe themselves. */
    private void report(String line) {
        reports.add(line);
    }

    private void writeReports(OutputStream protocol) {
        Writer out = new OutputStreamWriter(protocol, StandardCharsets.UTF_8);
        try {
            while (true) {
                String line = reports.take();
                out.write(line);
                out.write('\n');
                if (reports.isEmpty()) {
                    out.flush();
                }
                if (line.equals(BYE)) {
                    out.flush();
                    return;
                }
            }
        } catch (IOException | InterruptedException e) {
            System.err.println("soak client: cannot report to the parent (" + e + "); exiting");
            Runtime.getRuntime().halt(PARENT_GONE);
        }
    }

    private static String oneLine(Throwable t) {
        return String.valueOf(t).replaceAll("\\s+", " ");
    }

    private static final class Server {
        final SslContext context;
        final InetSocketAddress address;

        Server(SslContext context, InetSocketAddress address) {
            this.context = context;
            this.address = address;
        }
    }
}
