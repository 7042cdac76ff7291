package io.github.gracefultls.testing;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;

import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * A peer's first handler, next to the transport, below its {@code SslHandler}, where its TLS does not see what
 * happens. It records the raw bytes it reads, and on demand goes deaf (releases inbound bytes unread, running an
 * action at the first of them), corks the output (holds writes and sends them later as one buffer, one TCP
 * segment), cuts its next outbound buffer short and sends a FIN after it, injects raw bytes, sends a FIN or a
 * reset. Its {@link #ctx} closes below the {@code SslHandler}, without {@code close_notify}. Used on the channel's
 * event loop, apart from the getters.
 */
public final class Wire extends ChannelDuplexHandler {

    /** This handler's context, once added. */
    public volatile ChannelHandlerContext ctx;
    /** Bytes released unread since {@link #deafThen}. */
    public final AtomicLong deafBytes = new AtomicLong();
    /** Forward only this many bytes of the next outbound buffer that is longer, then FIN; -1: off. */
    public int truncateNextWriteTo = -1;
    private final ByteArrayOutputStream rawIn = new ByteArrayOutputStream();
    private final CompletableFuture<Void> firstDeafRead = new CompletableFuture<>();
    private volatile boolean deaf;
    private Consumer<ChannelHandlerContext> onFirstDeafRead;
    private CompositeByteBuf cork;

    /** From now on releases inbound bytes unread; runs {@code action} (may be null) at the first of them. */
    public Wire deafThen(Consumer<ChannelHandlerContext> action) {
        onFirstDeafRead = action;
        deaf = true;
        return this;
    }

    /** Waits until the deaf wire dropped some bytes (our close_notify, say); fails after {@code bound}. */
    public void awaitDeafBytes(Duration bound) throws InterruptedException {
        try {
            firstDeafRead.get(bound.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError("no bytes reached the deaf peer within " + bound);
        } catch (ExecutionException e) {
            throw new AssertionError(e.getCause());
        }
    }

    /** Every byte read so far, below TLS. */
    public synchronized byte[] rawIn() {
        return rawIn.toByteArray();
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof ByteBuf) {
            synchronized (this) {
                rawIn.writeBytes(ByteBufUtil.getBytes((ByteBuf) msg));
            }
        }
        if (!deaf) {
            ctx.fireChannelRead(msg);
            return;
        }
        if (msg instanceof ByteBuf) {
            deafBytes.addAndGet(((ByteBuf) msg).readableBytes());
        }
        ReferenceCountUtil.release(msg);
        firstDeafRead.complete(null);
        Consumer<ChannelHandlerContext> action = onFirstDeafRead;
        onFirstDeafRead = null;
        if (action != null) {
            action.accept(ctx);
        }
    }

    /** Holds every later write until {@link #uncork()}. */
    public void cork() {
        cork = ctx.alloc().compositeBuffer(1024);
    }

    /** Sends what was held as one buffer. */
    public ChannelFuture uncork() {
        CompositeByteBuf held = cork;
        cork = null;
        return ctx.writeAndFlush(held);
    }

    /** Sends what was held twice, e.g. a close_notify and its replay. */
    public ChannelFuture uncorkTwice() {
        CompositeByteBuf held = cork;
        cork = null;
        ctx.write(held.retainedDuplicate());
        return ctx.writeAndFlush(held);
    }

    /** Releases what is held, unsent. For clean-up. */
    public void releaseCork() {
        CompositeByteBuf held = cork;
        cork = null;
        if (held != null && held.refCnt() > 0) {
            held.release();
        }
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        if (cork != null && msg instanceof ByteBuf) {
            cork.addComponent(true, (ByteBuf) msg);
            promise.trySuccess();
            return;
        }
        int cut = truncateNextWriteTo;
        if (cut < 0 || !(msg instanceof ByteBuf) || ((ByteBuf) msg).readableBytes() <= cut) {
            ctx.write(msg, promise);
            return;
        }
        truncateNextWriteTo = -1;
        ByteBuf buf = (ByteBuf) msg;
        ByteBuf part = buf.retainedSlice(buf.readerIndex(), cut);
        buf.release();
        ChannelPromise written = ctx.newPromise();
        written.addListener(f -> {
            fin();
            if (f.isSuccess()) {
                promise.trySuccess();
            } else {
                promise.tryFailure(f.cause());
            }
        });
        ctx.write(part, written);
    }

    /** Writes raw bytes below TLS. */
    public ChannelFuture writeRaw(byte[] bytes) {
        return ctx.writeAndFlush(Unpooled.wrappedBuffer(bytes));
    }

    /** TCP FIN below TLS (no close_notify). */
    public void fin() {
        ((DuplexChannel) ctx.channel()).shutdownOutput();
    }

    /** TCP reset (SO_LINGER 0, then close below TLS). */
    public void reset() {
        ctx.channel().config().setOption(ChannelOption.SO_LINGER, 0);
        ctx.close();
    }
}
