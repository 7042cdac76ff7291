package io.github.gracefultls.benchmarks;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;

import java.util.function.Consumer;

/**
 * A TLS client and server on two {@link EmbeddedChannel}s with real {@link SslHandler}s, connected by moving the
 * encrypted bytes by hand: TLS without sockets, so that a benchmark measures the pipeline and nothing else. Each
 * pipeline is {@code ssl}, then what the initializer adds, then a {@link Sink} that counts and releases what
 * reaches it.
 */
final class EmbeddedTlsPair {

    private static final int MAX_PUMP_ROUNDS = 100;

    final EmbeddedChannel client;
    final EmbeddedChannel server;
    final SslHandler clientSsl;
    final SslHandler serverSsl;
    final Sink clientSink = new Sink();
    final Sink serverSink = new Sink();

    EmbeddedTlsPair(SslContext clientContext, SslContext serverContext,
                    Consumer<EmbeddedChannel> clientInit, Consumer<EmbeddedChannel> serverInit) {
        server = new EmbeddedChannel();
        serverSsl = serverContext.newHandler(server.alloc());
        server.pipeline().addLast("ssl", serverSsl);
        serverInit.accept(server);
        server.pipeline().addLast("sink", serverSink);

        client = new EmbeddedChannel();
        clientSsl = clientContext.newHandler(client.alloc());
        client.pipeline().addLast("ssl", clientSsl);
        clientInit.accept(client);
        client.pipeline().addLast("sink", clientSink);
    }

    /** Pumps until both handshakes succeeded. */
    EmbeddedTlsPair handshake() {
        for (int i = 0; i < MAX_PUMP_ROUNDS; i++) {
            pump();
            if (clientSsl.handshakeFuture().isDone() && serverSsl.handshakeFuture().isDone()) {
                break;
            }
        }
        if (!clientSsl.handshakeFuture().isSuccess() || !serverSsl.handshakeFuture().isSuccess()) {
            throw new IllegalStateException("handshake failed: client " + clientSsl.handshakeFuture().cause()
                    + ", server " + serverSsl.handshakeFuture().cause());
        }
        pump(); // TLS 1.3 session tickets and the like
        return this;
    }

    /** Moves bytes both ways until neither side has anything to send, or both channels closed. */
    void pump() {
        for (int i = 0; i < MAX_PUMP_ROUNDS; i++) {
            client.runPendingTasks();
            server.runPendingTasks();
            boolean moved = forward(client, server) | forward(server, client);
            if (!moved) {
                return;
            }
        }
        throw new IllegalStateException("the peers keep talking after " + MAX_PUMP_ROUNDS + " rounds");
    }

    /** Moves everything {@code from} wrote to {@code to}'s inbound, or releases it if {@code to} is closed. */
    static boolean forward(EmbeddedChannel from, EmbeddedChannel to) {
        boolean moved = false;
        for (;;) {
            Object msg = from.readOutbound();
            if (msg == null) {
                break;
            }
            moved = true;
            if (to.isOpen()) {
                to.pipeline().fireChannelRead(msg);
            } else {
                ReferenceCountUtil.release(msg);
            }
        }
        if (moved && to.isOpen()) {
            to.pipeline().fireChannelReadComplete();
        }
        return moved;
    }

    /** Closes both channels and releases whatever is left. */
    void release() {
        client.finishAndReleaseAll();
        server.finishAndReleaseAll();
    }

    /** Counts the bytes and the user events that reach the end of a pipeline, and releases the messages. */
    static final class Sink extends ChannelInboundHandlerAdapter {
        long bytes;
        long messages;
        Object lastEvent;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf) {
                bytes += ((ByteBuf) msg).readableBytes();
            }
            messages++;
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            lastEvent = evt;
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // Rejected writes after a closure and the like: not what these benchmarks measure.
        }
    }
}
