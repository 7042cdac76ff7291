package io.github.gracefultls.examples.http;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;

import java.io.IOException;

/**
 * The upstream's side: passes each response object on to the client, reading the next once it is written. A
 * response the upstream's stream cut (its last content failed, or the connection ended inside it) reaches the
 * client as a cut one: what arrived, then an abort.
 */
final class HttpProxyBackendHandler extends ChannelInboundHandlerAdapter {

    private final Channel frontend;
    /** A request went upstream and its response has not begun. */
    private boolean awaiting;
    /** The response's head went to the client, its end has not. */
    private boolean responding;
    /** The upstream delimits this body by the end of its connection: the client's connection ends after it too. */
    private boolean closeAfter;

    HttpProxyBackendHandler(Channel frontend) {
        this.frontend = frontend;
    }

    void requestSent() {
        awaiting = true;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        ctx.read();
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        HttpObject object = (HttpObject) msg;
        if (object.decoderResult().isFailure()) {
            Throwable cause = object.decoderResult().cause();
            if (msg instanceof LastHttpContent && ((LastHttpContent) msg).content().isReadable()) {
                // What did arrive goes on; the end does not.
                frontend.writeAndFlush(new DefaultHttpContent(((LastHttpContent) msg).content()))
                        .addListener(f -> cut(cause));
            } else {
                ReferenceCountUtil.release(msg);
                cut(cause);
            }
            return;
        }
        if (msg instanceof HttpResponse) {
            HttpResponse response = (HttpResponse) msg;
            awaiting = false;
            responding = true;
            HttpReverseProxy.removeHopByHop(response.headers());
            if (!HttpUtil.isContentLengthSet(response) && !HttpUtil.isTransferEncodingChunked(response)
                    && mayHaveBody(response)) {
                // Delimited by the end of the upstream's connection: chunked for the client, so that its end (the
                // final chunk) differs from a cut (none), and the client's connection ends after it.
                HttpUtil.setTransferEncodingChunked(response, true);
                closeAfter = true;
            }
            if (closeAfter) {
                response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            }
        }
        boolean last = msg instanceof LastHttpContent;
        if (last) {
            responding = false;
        }
        frontend.writeAndFlush(msg).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                HttpReverseProxy.abort(ctx.channel(), f.cause());
            } else if (last && closeAfter) {
                frontend.close(); // close_notify: this response ended cleanly
            } else {
                ctx.read();
            }
        });
    }

    private static boolean mayHaveBody(HttpResponse response) {
        int code = response.status().code();
        return code >= 200 && code != 204 && code != 304;
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (responding) {
            // No failed last content came (e.g. a Content-Length body ended by a clean close_notify): still cut.
            cut(new IOException("the upstream's connection ended inside a response"));
        } else if (awaiting && frontend.isActive()) {
            FullHttpResponse badGateway = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                    HttpResponseStatus.BAD_GATEWAY, Unpooled.EMPTY_BUFFER);
            badGateway.headers().set(HttpHeaderNames.CONTENT_LENGTH, 0)
                    .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            frontend.writeAndFlush(badGateway).addListener(ChannelFutureListener.CLOSE);
        } else if (frontend.isActive()) {
            frontend.close();
        }
        ctx.fireChannelInactive();
    }

    private void cut(Throwable cause) {
        responding = false;
        HttpReverseProxy.abort(frontend, cause);
    }
}
