package io.github.gracefultls.probe;

import io.github.gracefultls.TlsTruncationException;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * {@code --http}: reads the decoded response after {@code HttpTlsTruncationHandler}, and tells whether its body came
 * whole, was cut by an unclean end of the TLS stream (the handler's {@code TlsTruncationException}), or failed to
 * decode. Everything is released. Runs on the event loop; the results are read from the probe's thread once
 * {@link #awaitEnd} returns.
 */
final class HttpBodyReader extends ChannelInboundHandlerAdapter {

    /** What became of the response. */
    enum Body {
        /** No response head arrived. */
        NONE,
        /** The body ended as its framing says (or, delimited by the end of the connection, with a clean end). */
        COMPLETE,
        /** An unclean end of the TLS stream cut the response. */
        CUT,
        /** The response could not be decoded (not HTTP, headers too large, ...). */
        FAILED,
        /** The connection ended, or the probe gave up, before the body's end. */
        UNFINISHED
    }

    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile Body body = Body.NONE;
    private volatile String framing;
    private volatile long contentBytes;
    private volatile String problem;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        try {
            if (msg instanceof HttpResponse) {
                HttpResponse head = (HttpResponse) msg;
                body = Body.UNFINISHED;
                contentBytes = 0;
                framing = HttpUtil.isTransferEncodingChunked(head) ? "chunked"
                        : HttpUtil.getContentLength(head, -1L) >= 0
                        ? "Content-Length: " + HttpUtil.getContentLength(head, -1L)
                        : "delimited by the end of the connection";
                end(head.decoderResult(), false); // a failed head ends the response: the decoder gives up
            }
            if (msg instanceof HttpContent) {
                contentBytes += ((HttpContent) msg).content().readableBytes();
            }
            if (msg instanceof LastHttpContent) {
                end(((LastHttpContent) msg).decoderResult(), true);
            }
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    private void end(DecoderResult result, boolean last) {
        if (result.isSuccess()) {
            if (last) {
                body = Body.COMPLETE;
                ended.countDown();
            }
            return;
        }
        Throwable cause = result.cause();
        body = cause instanceof TlsTruncationException ? Body.CUT : Body.FAILED;
        problem = body == Body.CUT ? cause.getMessage() : RemoteProbe.rootMessage(cause);
        ended.countDown();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        ended.countDown(); // after the truncation handler's failed last content, if any
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
    }

    /** Waits until the response ended or the channel closed, for at most {@code millis}. */
    void awaitEnd(long millis) throws InterruptedException {
        ended.await(millis, TimeUnit.MILLISECONDS);
    }

    Body body() {
        return body;
    }

    /** How the body is delimited: "Content-Length: 1234", "chunked", "delimited by the end of the connection". */
    String framing() {
        return framing;
    }

    long contentBytes() {
        return contentBytes;
    }

    /** For {@link Body#CUT}, the {@code TlsTruncationException}'s message; for {@link Body#FAILED}, the decoder's. */
    String problem() {
        return problem;
    }
}
