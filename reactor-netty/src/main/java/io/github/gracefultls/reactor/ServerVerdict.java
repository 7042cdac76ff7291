package io.github.gracefultls.reactor;

import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.http.HttpTlsTruncationHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpContent;
import io.netty.util.ReferenceCountUtil;

/**
 * On a Reactor Netty server, turns the request content that {@link HttpTlsTruncationHandler} failed into an
 * {@code exceptionCaught}. Reactor Netty's server takes a failed decoder result for a malformed request (it answers
 * {@code 400} and completes the request's operations), and {@code receive()} then fails only when the connection
 * closes, with an {@code AbortedException} that has lost the cause. An exception reaches the request's operations
 * ({@code onInboundError}): {@code receive()} fails with the {@link TlsTruncationException}. Right after the
 * {@link HttpTlsTruncationHandler}.
 */
@ChannelHandler.Sharable
final class ServerVerdict extends ChannelInboundHandlerAdapter {

    static final ServerVerdict INSTANCE = new ServerVerdict();

    private ServerVerdict() {
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof HttpContent && ((HttpContent) msg).decoderResult().isFailure()
                && ((HttpContent) msg).decoderResult().cause() instanceof TlsTruncationException) {
            Throwable cut = ((HttpContent) msg).decoderResult().cause();
            ReferenceCountUtil.release(msg);
            ctx.fireExceptionCaught(cut);
            return;
        }
        ctx.fireChannelRead(msg);
    }
}
