package io.github.gracefultls.benchmarks;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
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

import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Data-path overhead: one message of {@code size} bytes per operation, written by the client, encrypted by its
 * {@code SslHandler}, moved to the server, decrypted and delivered to the end of its pipeline. With
 * {@code withHandler} both pipelines also have a {@link GracefulTlsCloseHandler}, which overrides no read, write or
 * flush method; with OpenSSL it also sets a record-framing step in front of the {@code SslHandler}'s cumulator, the
 * only part of it that sees data. Without, they are {@code SslHandler} alone. The figure is the throughput ratio
 * with/without, in the same run; {@link DataPathPaired} measures the same ratio in alternating pairs.
 *
 * <pre>
 * java -jar benchmarks/target/benchmarks.jar DataPathBenchmark
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 3, jvmArgsAppend = {"-Xms1g", "-Xmx1g", "-Dio.netty.leakDetection.level=disabled"})
public class DataPathBenchmark {

    @Param({"JDK", "OPENSSL"})
    public String provider;

    @Param({"TLSv1.3"})
    public String protocol;

    @Param({"64", "1024", "16384"})
    public int size;

    @Param({"true", "false"})
    public boolean withHandler;

    /**
     * A control, off by default: {@code hop} adds to both pipelines an empty handler that overrides
     * {@code channelRead} before the {@code SslHandler}, to show what one more pipeline context on the read path
     * costs
     * ({@code -p withHandler=false -p control=hop}).
     */
    @Param({"none"})
    public String control;

    private EmbeddedTlsPair pair;
    private ByteBuf payload;

    @Setup(Level.Trial)
    public void setUp() {
        pair = new EmbeddedTlsPair(
                TlsContexts.client(TlsContexts.provider(provider), TlsContexts.protocol(protocol)),
                TlsContexts.server(TlsContexts.provider(provider), TlsContexts.protocol(protocol)),
                this::addHandler, this::addHandler).handshake();
        byte[] bytes = new byte[size];
        ThreadLocalRandom.current().nextBytes(bytes);
        payload = ByteBufAllocator.DEFAULT.directBuffer(size).writeBytes(bytes);
        // A first message both ways, so that deferred records (TLS 1.3 tickets) are out of the way.
        clientToServer();
    }

    private void addHandler(EmbeddedChannel ch) {
        if (withHandler) {
            ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
        }
        if ("hop".equals(control)) {
            ch.pipeline().addBefore("ssl", "hop", new Hop());
        } else if (!"none".equals(control)) {
            throw new IllegalArgumentException("control: " + control + " (expected: none or hop)");
        }
    }

    /** An empty inbound handler on the read path. */
    static final class Hop extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ctx.fireChannelRead(msg);
        }
    }

    @Benchmark
    public long clientToServer() {
        EmbeddedChannel client = pair.client;
        client.writeAndFlush(payload.retainedDuplicate(), client.voidPromise());
        EmbeddedTlsPair.forward(client, pair.server);
        return pair.serverSink.bytes;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        long expected = pair.serverSink.messages;
        pair.client.checkException();
        pair.server.checkException();
        if (expected == 0) {
            throw new IllegalStateException("no message reached the server");
        }
        payload.release();
        pair.release();
    }
}
