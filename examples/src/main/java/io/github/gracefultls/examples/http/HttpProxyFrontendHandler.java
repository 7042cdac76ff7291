package io.github.gracefultls.examples.http;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;

import java.io.IOException;

/**
 * The client's side: connects the upstream, then passes each request object on, reading the next once it is
 * written. A request whose body the client's stream cut is not completed upstream: the upstream connection is
 * aborted instead.
 */
final class HttpProxyFrontendHandler extends ChannelInboundHandlerAdapter {

    private final HttpReverseProxy proxy;
    private Channel backend;
    private HttpProxyBackendHandler backendHandler;
    private boolean inRequest;

    HttpProxyFrontendHandler(HttpReverseProxy proxy) {
        this.proxy = proxy;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        Channel frontend = ctx.channel();
        backendHandler = new HttpProxyBackendHandler(frontend);
        proxy.connectUpstream(frontend, backendHandler).addListener((ChannelFuture f) -> {
            if (!f.isSuccess()) {
                HttpReverseProxy.abort(frontend, f.cause());
            } else if (!frontend.isActive()) {
                f.channel().close();
            } else {
                backend = f.channel();
                frontend.read();
            }
        });
        ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        HttpObject object = (HttpObject) msg;
        if (object.decoderResult().isFailure()) {
            // A request cut short (or malformed): never complete it upstream.
            ReferenceCountUtil.release(msg);
            HttpReverseProxy.abort(backend, object.decoderResult().cause());
            ctx.close();
            return;
        }
        if (msg instanceof HttpRequest) {
            HttpReverseProxy.removeHopByHop(((HttpRequest) msg).headers());
            inRequest = true;
            backendHandler.requestSent();
        }
        if (msg instanceof LastHttpContent) {
            inRequest = false;
        }
        backend.writeAndFlush(msg).addListener((ChannelFutureListener) f -> {
            if (f.isSuccess()) {
                ctx.read();
            } else {
                HttpReverseProxy.abort(ctx.channel(), f.cause());
            }
        });
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (backend != null && backend.isActive()) {
            if (inRequest) {
                HttpReverseProxy.abort(backend, new IOException("the client's connection ended inside a request"));
            } else {
                backend.close(); // close_notify, as the client ended between requests
            }
        }
        ctx.fireChannelInactive();
    }
}
