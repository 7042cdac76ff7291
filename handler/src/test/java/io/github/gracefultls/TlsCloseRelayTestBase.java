package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.params.provider.Arguments;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link TlsCloseRelay} over real loopback sockets: a Netty TLS client, a TLS-terminating proxy (frontend: server
 * {@code SslHandler} and {@link GracefulTlsCloseHandler}; backend on the frontend's event loop, plain TCP or TLS) and
 * an upstream server (plain, or TLS with its own {@code GracefulTlsCloseHandler}), over every {@link Transport}. The
 * tests are split by what they show; this class has the upstream, the proxy, the client and their helpers. Every
 * channel has
 * {@link ChannelOption#ALLOW_HALF_CLOSURE} on. The client and the frontend use the same provider and protocol, and so
 * does a TLS upstream and the backend.
 *
 * <p>What the far side sees is the point: a clean end stays clean and carries every byte; a truncation, a reset or a
 * timeout on one side never reaches the other side as a clean {@code close_notify} or FIN.
 */
abstract class TlsCloseRelayTestBase extends SocketTestBase {

    /** Bound for every wait on what should come at once: far from any stall of a loaded machine. */
    static final long AWAIT_SECONDS = 30;
    static final Duration AWAIT = Duration.ofSeconds(AWAIT_SECONDS);
    static final int MIB = 1024 * 1024;
    /**
     * The relays' drain period where a test does not measure what it saves: a truncation reaches the far peer this
     * long after the last byte. A stall only delays it; the bytes such a test checks were read before.
     */
    static final Duration SHORT_DRAIN = Duration.ofMillis(200);

    /** How the proxy reaches the upstream. */
    enum Upstream {
        PLAIN, TLS
    }

    @Override
    int eventLoopThreads() {
        return 2;
    }

    @Override
    Duration await() {
        return AWAIT;
    }

    /** JDK/OPENSSL x TLSv1.2/TLSv1.3, as (SslProvider, protocol). */
    static Stream<Arguments> cells() {
        return Tls.providersAndProtocols();
    }

    static Stream<Arguments> cellsAndUpstreams() {
        return Tls.providersAndProtocols().flatMap(a -> Stream.of(Upstream.values())
                .map(u -> Arguments.of(a.get()[0], a.get()[1], u)));
    }

    /** The cells whose engine replies to the peer's close_notify at once (SPEC, "TLS engines differ"). */
    static Stream<Arguments> cellsWithoutTrueHalfClose() {
        return Tls.providersAndProtocols().filter(a -> !isTrueHalfClose((SslProvider) a.get()[0], (String) a.get()[1]));
    }

    static boolean isTrueHalfClose(SslProvider provider, String protocol) {
        return provider == SslProvider.JDK && Tls.TLS_1_3.equals(protocol);
    }

    // ------------------------------------------------------------------------------------------------------------
    // The upstream, the proxy and the client
    // ------------------------------------------------------------------------------------------------------------

    /** An upstream server, plain or TLS, for one connection: records what it receives, and its user events. */
    static final class UpstreamServer {
        final Upstream kind;
        final SslProvider provider;
        final String protocol;
        final Peer peer;
        final RecordingHandler rec;

        UpstreamServer(Upstream kind, SslProvider provider, String protocol, Peer peer) {
            this.kind = kind;
            this.provider = provider;
            this.protocol = protocol;
            this.peer = peer;
            this.rec = peer.rec;
        }

        SocketAddress address() {
            return peer.address();
        }

        Channel awaitAccepted() throws Exception {
            return peer.awaitAccepted();
        }

        TlsCloseEvent awaitEvent() throws Exception {
            return rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        }
    }

    UpstreamServer startUpstream(Upstream kind, SslProvider provider, String protocol,
                                         Supplier<GracefulTlsCloseHandler> tlsHandler) throws Exception {
        boolean tls = kind == Upstream.TLS;
        Peer peer = sockets.listen(tls ? Tls.serverContext(provider, protocol) : null, tls ? tlsHandler.get() : null,
                RecordingHandler.swallowingExceptions(), null);
        return new UpstreamServer(kind, provider, protocol, peer);
    }

    /**
     * A TLS-terminating proxy for one connection, in the shape of Netty's HexDumpProxy: auto-read off, the backend
     * connected on the frontend's event loop once the frontend is active, then {@link TlsCloseRelay#link}.
     */
    final class Proxy {
        final Channel server;
        final CompletableFuture<TlsCloseRelay> relay = new CompletableFuture<>();

        Proxy(SslProvider provider, String protocol, UpstreamServer upstream,
              Supplier<GracefulTlsCloseHandler> frontendHandler, TlsCloseRelay.TruncationSignal signal,
              Duration drain) throws Exception {
            ChannelFuture bind = new ServerBootstrap()
                    .group(group())
                    .channel(transport.serverChannelClass())
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childOption(ChannelOption.AUTO_READ, false)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(Tls.serverContext(provider, protocol).newHandler(ch.alloc()));
                            ch.pipeline().addLast(frontendHandler.get());
                            ch.pipeline().addLast(new Connector(upstream, relay, signal, drain));
                            sockets.closeAfter(() -> closeBelowTls(ch));
                        }
                    })
                    .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            server = bind.channel();
            sockets.closeAfter(() -> server.close().await(AWAIT_SECONDS, SECONDS));
            bind.get(AWAIT_SECONDS, SECONDS);
        }

        TlsCloseRelay relay() throws Exception {
            return relay.get(AWAIT_SECONDS, SECONDS);
        }

        TlsCloseRelay.Outcome awaitOutcome() throws Exception {
            return relay().closeFuture().get(AWAIT_SECONDS, SECONDS);
        }
    }

    /** Connects the backend when the frontend is active, and links the two. */
    final class Connector extends ChannelInboundHandlerAdapter {
        private final UpstreamServer upstream;
        private final CompletableFuture<TlsCloseRelay> relay;
        private final TlsCloseRelay.TruncationSignal signal;
        private final Duration drain;

        Connector(UpstreamServer upstream, CompletableFuture<TlsCloseRelay> relay,
                  TlsCloseRelay.TruncationSignal signal, Duration drain) {
            this.upstream = upstream;
            this.relay = relay;
            this.signal = signal;
            this.drain = drain;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            Channel frontend = ctx.channel();
            ChannelHandler backendHandler = upstream.kind == Upstream.PLAIN
                    ? new ChannelInboundHandlerAdapter()
                    : new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(Tls.clientContext(upstream.provider, upstream.protocol)
                                    .newHandler(ch.alloc()));
                            ch.pipeline().addLast(new GracefulTlsCloseHandler());
                        }
                    };
            new Bootstrap()
                    .group(frontend.eventLoop())
                    .channel(transport.channelClass())
                    .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .option(ChannelOption.AUTO_READ, false)
                    .handler(backendHandler)
                    .connect(upstream.address())
                    .addListener((ChannelFuture f) -> {
                        if (!f.isSuccess()) {
                            relay.completeExceptionally(f.cause());
                            frontend.close();
                            return;
                        }
                        sockets.closeAfter(() -> closeBelowTls(f.channel()));
                        try {
                            TlsCloseRelay r = TlsCloseRelay.link(frontend, f.channel(), signal, drain);
                            sockets.closeAfter(() -> {
                                if (!r.closeFuture().isDone()) {
                                    r.abort();
                                }
                            });
                            relay.complete(r);
                        } catch (Throwable t) {
                            relay.completeExceptionally(t);
                        }
                    });
            ctx.pipeline().remove(this);
        }
    }

    Proxy startProxy(SslProvider provider, String protocol, UpstreamServer upstream,
                             Supplier<GracefulTlsCloseHandler> frontendHandler) throws Exception {
        return startProxy(provider, protocol, upstream, frontendHandler, TlsCloseRelay.TruncationSignal.RESET,
                SHORT_DRAIN);
    }

    /** With a signal and a drain period: see {@link TlsCloseRelay#link}. */
    Proxy startProxy(SslProvider provider, String protocol, UpstreamServer upstream,
                     Supplier<GracefulTlsCloseHandler> frontendHandler, TlsCloseRelay.TruncationSignal signal,
                     Duration drain) throws Exception {
        return new Proxy(provider, protocol, upstream, frontendHandler, signal, drain);
    }

    Client connect(SslProvider provider, String protocol, Proxy proxy, GracefulTlsCloseHandler handler)
            throws Exception {
        return sockets.connect(Tls.clientContext(provider, protocol), proxy.server.localAddress(), handler,
                RecordingHandler.swallowingExceptions());
    }

    /** Writes {@code chunk} while the channel is writable, up to {@code limit} bytes; reports where it stalled. */
    static final class Pump {
        final Channel channel;
        final byte[] chunk;
        final long limit;
        final AtomicLong written = new AtomicLong();
        final CompletableFuture<Long> stalled = new CompletableFuture<>();

        Pump(Channel channel, byte[] chunk, long limit) {
            this.channel = channel;
            this.chunk = chunk;
            this.limit = limit;
        }

        /** On the channel's event loop: writes, then checks again on the next loop iteration. */
        void run() {
            while (channel.isWritable() && written.get() < limit) {
                channel.writeAndFlush(Unpooled.wrappedBuffer(chunk));
                written.addAndGet(chunk.length);
            }
            if (written.get() >= limit) {
                stalled.complete(written.get());
                return;
            }
            // Unwritable: stalled if it stays so for a while (nothing drains). Bounded by the caller's wait.
            long mark = channel.unsafe().outboundBuffer().totalPendingWriteBytes();
            channel.eventLoop().schedule(() -> {
                if (!channel.isWritable()
                        && channel.unsafe().outboundBuffer().totalPendingWriteBytes() == mark) {
                    stalled.complete(written.get());
                } else {
                    run();
                }
            }, 200, TimeUnit.MILLISECONDS);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    Channel newSocket(boolean allowHalfClosure) throws Exception {
        SocketChannel ch = transport.channelClass().getConstructor().newInstance();
        ch.config().setAllowHalfClosure(allowHalfClosure);
        group().next().register(ch).get(AWAIT_SECONDS, SECONDS);
        sockets.closeAfter(() -> ch.close().await(AWAIT_SECONDS, SECONDS));
        return ch;
    }

    /**
     * Writes {@code bytes}, then ends cleanly once they are written: a plain side with a FIN (a direct
     * {@code shutdownOutput()} would fail the writes still queued), a TLS side with close_notify, then FIN.
     */
    static void respondAndEnd(Upstream kind, Channel ch, byte[] bytes) {
        ChannelFuture written = ch.writeAndFlush(Unpooled.wrappedBuffer(bytes));
        if (kind == Upstream.TLS) {
            GracefulTlsCloseHandler.shutdownOutput(ch); // flushes what was written first
        } else {
            written.addListener(f -> ((DuplexChannel) ch).shutdownOutput());
        }
    }

    /** Closes with a TCP reset: SO_LINGER 0, closed below any TLS handler. */
    static void reset(Channel ch) throws Exception {
        onEventLoop(ch, () -> ch.config().setOption(ChannelOption.SO_LINGER, 0));
        closeBelowTls(ch);
    }

    /** Closes at the head of the pipeline, past every handler: no close_notify, no wait. */
    static void closeBelowTls(Channel ch) throws InterruptedException {
        TlsSockets.closeBelowTls(ch, AWAIT);
    }

    static <T> T onEventLoop(Channel ch, Callable<T> task) throws Exception {
        return TlsSockets.onEventLoop(ch, task, AWAIT);
    }

    /** A plain peer saw a reset: an IOException, before any end of stream (with half-closure a reset also ends it). */
    static void assertResetSeen(RecordingHandler rec, String who) throws InterruptedException {
        rec.awaitCondition(r -> !r.exceptions().isEmpty() || r.isInactive(), AWAIT, "a reset at " + who);
        List<Object> timeline = rec.timeline();
        int reset = -1;
        int fin = -1;
        for (int i = 0; i < timeline.size(); i++) {
            Object o = timeline.get(i);
            if (reset < 0 && o instanceof IOException) {
                reset = i;
            }
            if (fin < 0 && o instanceof ChannelInputShutdownEvent) {
                fin = i;
            }
        }
        assertThat(reset).as("%s saw a reset (IOException); timeline %s", who, timeline).isNotNegative();
        if (fin >= 0) {
            assertThat(fin).as("%s saw the reset before any end of stream; timeline %s", who, timeline)
                    .isGreaterThan(reset);
        }
    }

    /** A peer whose input had ended sees a reset on its next writes: they fail. */
    /**
     * Writes 1 KiB at a time until a write fails with an {@link IOException}. Bounded by time, not bytes: the peer's
     * reset can come some time after its channel reported closed (NIO closes a registered socket's descriptor only
     * at its loop's next select), and until then the peer's kernel buffers take the writes. If the peer never goes,
     * its buffers fill, a write stays pending, and the bound ends the wait.
     */
    static void assertWritesFail(Channel ch, String who) throws Exception {
        long deadline = System.nanoTime() + AWAIT.toNanos();
        long written = 0;
        while (true) {
            ChannelFuture f = ch.writeAndFlush(Unpooled.wrappedBuffer(new byte[1024]));
            long left = Math.max(0, deadline - System.nanoTime());
            if (!f.await(left, TimeUnit.NANOSECONDS)) {
                throw new AssertionError(who + ": " + written + " bytes written, then a write stayed pending for "
                        + AWAIT_SECONDS + " s: the peer neither read nor reset");
            }
            if (!f.isSuccess()) {
                assertThat(f.cause()).as("%s: write failure", who).isInstanceOf(IOException.class);
                return;
            }
            written += 1024;
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError(who + ": " + written + " bytes written in " + AWAIT_SECONDS
                        + " s after the reset, and no write failed");
            }
        }
    }

    static void assertEvent(TlsCloseEvent event, TlsCloseStatus status, TlsCloseInitiator initiator) {
        assertThat(event).as("TlsCloseEvent").isNotNull();
        assertThat(event.status()).as("status of %s", event).isEqualTo(status);
        assertThat(event.initiator()).as("initiator of %s", event).isEqualTo(initiator);
    }

    static void assertBothClosed(Proxy proxy) throws Exception {
        TlsCloseRelay relay = proxy.relay();
        assertThat(relay.frontend().closeFuture().await(AWAIT_SECONDS, SECONDS)).as("frontend closed").isTrue();
        assertThat(relay.backend().closeFuture().await(AWAIT_SECONDS, SECONDS)).as("backend closed").isTrue();
    }

    static void assertSameBytes(byte[] actual, byte[] expected, String what) {
        assertThat(actual.length).as("length of the %s", what).isEqualTo(expected.length);
        assertThat(hex(sha256().digest(actual))).as("SHA-256 of the %s", what)
                .isEqualTo(hex(sha256().digest(expected)));
    }

    static byte[] payload(int length, int seed) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) ((i * 31 + seed * 7) % 251);
        }
        return bytes;
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }
}
