package io.github.gracefultls.benchmarks;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * One graceful closure per operation, both {@code close_notify}s exchanged and both channels closed, on a pair that
 * {@code @Setup(Level.Invocation)} connected and handshook:
 *
 * <ul>
 *   <li>{@code graceful}: {@link GracefulTlsCloseHandler} on both sides; the client calls {@code close()}
 *       (SHUT_RDWR), the server answers by its default {@code PeerClosePolicy.CLOSE}.</li>
 *   <li>{@code netty}: {@code SslHandler} alone, Netty's own graceful closure: the client's
 *       {@code closeNotifyReadTimeout} is set, so its {@code close()} waits for the server's {@code close_notify};
 *       the server's application closes on {@code SslCloseCompletionEvent}.</li>
 * </ul>
 *
 * <p>Run it with {@code -prof gc}: {@code gc.alloc.rate.norm} counts the bytes allocated per operation including the
 * handshake of the set-up, which is the same in both variants, so the difference between them is what the handler
 * adds to a closure. The bytes allocated by the closure alone (read from the thread's allocation counter around it)
 * are printed at the end of each fork as {@code closure-only allocation}.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar ClosureBenchmark -prof gc
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g", "-Dio.netty.leakDetection.level=disabled"})
public class ClosureBenchmark {

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    @Param({"JDK", "OPENSSL"})
    public String provider;

    @Param({"TLSv1.2", "TLSv1.3"})
    public String protocol;

    @Param({"graceful", "netty"})
    public String closer;

    private EmbeddedTlsPair pair;
    private long closureBytes;
    private long closures;

    @Setup(Level.Invocation)
    public void connect() {
        boolean graceful = "graceful".equals(closer);
        if (!graceful && !"netty".equals(closer)) {
            throw new IllegalArgumentException("closer: " + closer + " (expected: graceful or netty)");
        }
        pair = new EmbeddedTlsPair(
                TlsContexts.client(TlsContexts.provider(provider), TlsContexts.protocol(protocol)),
                TlsContexts.server(TlsContexts.provider(provider), TlsContexts.protocol(protocol)),
                ch -> {
                    if (graceful) {
                        ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                    }
                },
                ch -> {
                    if (graceful) {
                        ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
                    } else {
                        ch.pipeline().addLast("close-on-close-notify", new CloseOnCloseNotify());
                    }
                });
        if (!graceful) {
            pair.clientSsl.setCloseNotifyReadTimeout(3, TimeUnit.SECONDS);
        }
        pair.handshake();
    }

    @Benchmark
    public Object close() {
        long before = THREADS.getCurrentThreadAllocatedBytes();
        pair.client.close();
        pair.pump();
        long after = THREADS.getCurrentThreadAllocatedBytes();
        closureBytes += after - before;
        closures++;
        if (pair.client.isOpen() || pair.server.isOpen()) {
            throw new IllegalStateException(closer + ": the closure did not complete: client open "
                    + pair.client.isOpen() + ", server open " + pair.server.isOpen());
        }
        if ("graceful".equals(closer) && !(pair.clientSink.lastEvent instanceof TlsCloseEvent
                && ((TlsCloseEvent) pair.clientSink.lastEvent).isClean())) {
            throw new IllegalStateException("graceful: no clean TlsCloseEvent: " + pair.clientSink.lastEvent);
        }
        return pair.clientSink.lastEvent;
    }

    @TearDown(Level.Invocation)
    public void release() {
        pair.release();
    }

    @TearDown(Level.Trial)
    public void report() {
        if (closures > 0) {
            System.out.printf(Locale.ROOT, "%n%s %s %s: closure-only allocation %d B/closure over %d closures%n",
                    provider, protocol, closer, closureBytes / closures, closures);
        }
    }

    /** Netty alone: the server's application closes when the client's close_notify arrives. */
    static final class CloseOnCloseNotify extends ChannelInboundHandlerAdapter {
        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof SslCloseCompletionEvent) {
                ctx.close();
            }
            ctx.fireUserEventTriggered(evt);
        }
    }
}
