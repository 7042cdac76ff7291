package io.github.gracefultls.interop;

import io.github.gracefultls.TlsCloseEvent;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.FullHttpMessage;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.util.ReferenceCountUtil;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * After an {@code HttpObjectAggregator}: keeps what each aggregated HTTP message was (status, headers, decoder
 * result, content) and the order of messages and {@link TlsCloseEvent}s, then releases the message. Messages and
 * user events of any other kind pass on.
 */
final class HttpOutcomes extends ChannelInboundHandlerAdapter {

    /** One aggregated message as the application saw it. {@code status} is -1 for a request. */
    record Message(int status, HttpHeaders headers, DecoderResult result, byte[] content) {

        boolean success() {
            return result.isSuccess();
        }

        Throwable cause() {
            return result.cause();
        }

        @Override
        public String toString() {
            return (status < 0 ? "request" : "response " + status) + " with " + content.length + " bytes, "
                    + (result.isSuccess() ? "success" : "failure: " + result.cause());
        }
    }

    private final BlockingQueue<Message> messages = new LinkedBlockingQueue<>();
    private final List<Object> timeline = new ArrayList<>();

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof FullHttpMessage)) {
            ctx.fireChannelRead(msg);
            return;
        }
        FullHttpMessage full = (FullHttpMessage) msg;
        Message m;
        try {
            m = new Message(full instanceof HttpResponse ? ((HttpResponse) full).status().code() : -1,
                    full.headers().copy(), full.decoderResult(), ByteBufUtil.getBytes(full.content()));
        } finally {
            ReferenceCountUtil.release(full);
        }
        synchronized (this) {
            timeline.add(m);
        }
        messages.add(m);
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof TlsCloseEvent) {
            synchronized (this) {
                timeline.add(evt);
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    /** The next message, waiting up to {@code bound}; fails with what the channel saw if none comes. */
    Message await(Duration bound, Endpoint endpoint) throws InterruptedException {
        Message m = messages.poll(bound.toMillis(), TimeUnit.MILLISECONDS);
        if (m == null) {
            long raw = endpoint.tap.reads().stream().mapToLong(r -> r.length).sum();
            throw new AssertionError("no HTTP message within " + bound + "; timeline " + timeline() + "; channel "
                    + endpoint.channel + " (open " + endpoint.channel.isOpen() + ", active "
                    + endpoint.channel.isActive() + "), " + endpoint.tap.reads().size() + " raw reads of " + raw
                    + " bytes, events " + endpoint.rec.timeline());
        }
        return m;
    }

    /** Messages not taken by {@link #await} yet. */
    List<Message> remaining() {
        return List.copyOf(messages);
    }

    /** Messages and TlsCloseEvents, in the order they reached this handler. */
    synchronized List<Object> timeline() {
        return List.copyOf(timeline);
    }
}
