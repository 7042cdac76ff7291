package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.testing.EventLoops;
import io.github.gracefultls.testing.LoopLateness;
import io.github.gracefultls.testing.RecordingHandler;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.Future;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Our side of a connection: a Netty channel whose pipeline is {@code tap} ({@link WireTap}), {@code ssl},
 * {@code tls-close} ({@link GracefulTlsCloseHandler}), the application's handlers, and {@code rec}
 * ({@link RecordingHandler}, last). Every channel has {@link ChannelOption#ALLOW_HALF_CLOSURE} on, so that a FIN
 * without close_notify is seen as such.
 */
final class Endpoint implements AutoCloseable {

    /** Bound for every wait on what should come at once: far from any stall of a loaded machine. */
    static final Duration AWAIT = Duration.ofSeconds(30);

    final Channel channel;
    final SslHandler ssl;
    final GracefulTlsCloseHandler handler;
    final RecordingHandler rec;
    final WireTap tap;
    /** How late this channel's event loop ran, from the pipeline's installation until the channel closed. */
    final LoopLateness lateness;

    private Endpoint(Channel channel, SslHandler ssl, GracefulTlsCloseHandler handler, RecordingHandler rec,
                     WireTap tap) {
        this.channel = channel;
        this.ssl = ssl;
        this.handler = handler;
        this.rec = rec;
        this.tap = tap;
        this.lateness = LoopLateness.watch(channel.eventLoop());
        channel.closeFuture().addListener(f -> lateness.close());
    }

    /** Builds our pipeline on {@code ch}. */
    static Endpoint install(Channel ch, SslContext sslContext, GracefulTlsCloseHandler handler,
                            List<ChannelHandler> app) {
        WireTap tap = new WireTap();
        RecordingHandler rec = RecordingHandler.swallowingExceptions();
        SslHandler ssl = sslContext.newHandler(ch.alloc());
        ChannelPipeline p = ch.pipeline();
        p.addLast("tap", tap);
        p.addLast("ssl", ssl);
        p.addLast("tls-close", handler);
        for (ChannelHandler h : app) {
            p.addLast(h);
        }
        p.addLast("rec", rec);
        return new Endpoint(ch, ssl, handler, rec, tap);
    }

    /**
     * Reads of up to 64 KiB, whatever came before: a TCP segment on loopback is read whole, so that what the peer sent
     * together (a close_notify and plaintext) reaches the SslHandler in one read.
     */
    static final RecvByteBufAllocator WHOLE_SEGMENT_READS = new FixedRecvByteBufAllocator(64 * 1024);

    /** Connects our client to 127.0.0.1:{@code port} and waits for the TLS handshake. */
    static Endpoint connect(EventLoops loops, Cell cell, int port, GracefulTlsCloseHandler handler,
                            ChannelHandler... app) throws Exception {
        return connect(loops, cell, port, null, handler, app);
    }

    /** As {@link #connect(EventLoops, Cell, int, GracefulTlsCloseHandler, ChannelHandler...)}, with its reads. */
    static Endpoint connect(EventLoops loops, Cell cell, int port, RecvByteBufAllocator reads,
                            GracefulTlsCloseHandler handler, ChannelHandler... app) throws Exception {
        Endpoint[] endpoint = new Endpoint[1];
        Bootstrap bootstrap = new Bootstrap()
                .group(loops.group(cell.transport()))
                .channel(cell.transport().channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) AWAIT.toMillis())
                .option(ChannelOption.RCVBUF_ALLOCATOR, reads != null ? reads : new AdaptiveRecvByteBufAllocator())
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        endpoint[0] = install(ch, cell.clientContext(), handler, List.of(app));
                    }
                });
        ChannelFuture connected = bootstrap.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
        connected.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        Channel ch = connected.channel();
        assertThat(ch).isInstanceOf(cell.transport().channelClass());
        endpoint[0].awaitHandshake();
        return endpoint[0];
    }

    void awaitHandshake() throws InterruptedException, TimeoutException {
        try {
            ssl.handshakeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new AssertionError("TLS handshake of " + channel + " failed", e.getCause());
        }
    }

    /** The one TLS closure event of this channel, waiting for it with a bound. */
    TlsCloseEvent awaitEvent() throws Exception {
        return awaitEvent(AWAIT);
    }

    TlsCloseEvent awaitEvent(Duration bound) throws Exception {
        try {
            return handler.closeFuture().get(bound.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError("no TlsCloseEvent within " + bound + "; timeline: " + rec.timeline());
        }
    }

    /** Waits for a closure's future; on timeout fails with what the channel saw. */
    TlsCloseEvent await(Future<TlsCloseEvent> future) throws Exception {
        if (!future.await(AWAIT.toMillis(), TimeUnit.MILLISECONDS)) {
            List<Integer> reads = new ArrayList<>();
            tap.reads().forEach(r -> reads.add(r.length));
            throw new AssertionError("closure not done within " + AWAIT + " on " + channel + " (open "
                    + channel.isOpen() + ", active " + channel.isActive() + "); pipeline "
                    + channel.pipeline().names() + "; raw reads " + reads + "; timeline " + rec.timeline());
        }
        return future.get();
    }

    void awaitClosed() throws Exception {
        try {
            channel.closeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError(channel + " still open after " + AWAIT + "; timeline: " + rec.timeline());
        }
    }

    /**
     * Asserts the invariants of a closed channel: exactly one TlsCloseEvent, fired before channelInactive reached
     * the application, and no exception propagated to it.
     */
    void assertClosedWithOneEvent() throws Exception {
        awaitClosed();
        rec.awaitInactive(AWAIT);
        List<Object> events = rec.events();
        List<TlsCloseEvent> closeEvents = rec.eventsOfType(TlsCloseEvent.class);
        assertThat(closeEvents).as("TlsCloseEvents in %s", events).hasSize(1);
        assertThat(events.indexOf(closeEvents.get(0)))
                .as("the TlsCloseEvent before channelInactive in %s", events)
                .isLessThan(events.indexOf(RecordingHandler.Marker.CHANNEL_INACTIVE));
        assertThat(handler.closeFuture().getNow()).isSameAs(closeEvents.get(0));
        assertThat(rec.exceptions()).as("exceptions that reached the application").isEmpty();
    }

    /**
     * Asserts a clean transport reuse: the TLS handlers left the pipeline and the channel is still open. Checked on the
     * event loop, in a task after the one that completed the closure.
     */
    void assertHandedBackAsPlaintext() throws Exception {
        List<String> names = channel.eventLoop().submit(() -> channel.pipeline().names())
                .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(names).as("the pipeline after a clean bye").containsExactly("tap", "rec", "DefaultChannelPipeline$TailContext#0");
        assertThat(channel.isOpen()).as("channel open after reuse").isTrue();
        assertThat(rec.eventsOfType(TlsCloseEvent.class)).hasSize(1);
    }

    /** Closes the transport below every handler (no close_notify, no wait): for cleanup only. */
    @Override
    public void close() throws Exception {
        lateness.close();
        if (channel.isOpen()) {
            channel.eventLoop().submit(() -> {
                ChannelHandlerContext first = channel.pipeline().firstContext();
                return first != null ? first.close() : channel.close();
            }).get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        }
        channel.closeFuture().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public String toString() {
        return channel + " " + rec;
    }
}
