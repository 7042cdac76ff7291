package io.github.gracefultls.http;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsTruncationException;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.MessageAggregator;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectDecoder;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;

import java.util.Map;

/**
 * Makes an HTTP/1.x message that an unclean TLS end cut short fail to decode, instead of decoding as complete, and
 * marks each inbound message's begin and end for the channel's {@link TlsCloseEvent}
 * ({@link TlsCloseEvent#messageState()}).
 *
 * <p>Netty's HTTP decoder takes the end of the connection as the end of a body that has neither a
 * {@code Content-Length} nor chunked framing, and delivers it as a successful {@link LastHttpContent}. RFC 9112
 * (section 9.8) says such a body is complete only if the TLS closure was clean: a stream that ended without
 * {@code close_notify} may have been cut by an attacker. For a cut {@code Content-Length} or chunked body, and any
 * cut request body, Netty's decoder emits no end at all, and {@code HttpObjectAggregator} silently drops what it
 * had gathered. With this handler, once the channel's TLS closure is {@link TlsCloseEvent#isClean() not clean} while
 * a message is in progress, that message always ends, and ends with a failed {@link DecoderResult} whose cause is a
 * {@link TlsTruncationException} saying where the stream was cut:
 * <ul>
 *   <li>its {@link LastHttpContent} (carrying the content that came with it, if any) fails, on both sides;</li>
 *   <li>behind an {@code HttpObjectAggregator}, so does the aggregated {@code FullHttpMessage};</li>
 *   <li>a head that Netty's decoder reports as cut ("Connection closed before received headers") gets the same
 *       cause.</li>
 * </ul>
 * A clean closure changes nothing, and neither does an unclean one between messages (a browser that drops TCP after
 * its last response lost nothing).
 *
 * <h2>Pipeline</h2>
 * Right after the HTTP codec, before any aggregator; the {@link GracefulTlsCloseHandler} comes earlier:
 * <pre>
 * ch.pipeline().addLast("ssl", sslContext.newHandler(ch.alloc()))
 *         .addLast("tls-close", new GracefulTlsCloseHandler())
 *         .addLast("http", new HttpClientCodec())
 *         .addLast("http-tls-truncation", new HttpTlsTruncationHandler())
 *         .addLast("aggregator", new HttpObjectAggregator(1 &lt;&lt; 20))
 *         .addLast("app", app);
 * </pre>
 * Handlers that pass HTTP objects on as they come ({@code HttpContentDecompressor}, a logger) may sit between the
 * codec and this handler. Added elsewhere, it fails at {@code handlerAdded} with an {@link IllegalStateException}
 * that says why.
 *
 * <h2>Message marks</h2>
 * An inbound message counts as in progress from its decoded head to its {@link LastHttpContent}. An end inside the
 * bytes of a head that Netty has not decoded yet counts as between messages; no message reaches the application
 * from it.
 *
 * <p>Not {@link ChannelHandler.Sharable}: one instance per channel. Everything runs on the event loop.
 */
public final class HttpTlsTruncationHandler extends ChannelInboundHandlerAdapter {

    private GracefulTlsCloseHandler tlsClose;
    /** The unclean outcome, once known: every cut part of a message from then on fails. */
    private TlsCloseEvent unclean;
    /** The inbound message in progress: its head has been decoded, its LastHttpContent has not. */
    private boolean inMessage;
    private boolean request;
    private boolean chunked;
    private long contentLength;
    private long received;

    /** Creates one for one channel. */
    public HttpTlsTruncationHandler() {
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        String problem = placement(ctx);
        if (problem != null) {
            throw new IllegalStateException(getClass().getSimpleName() + " " + problem + ", e.g. pipeline.addLast("
                    + "\"ssl\", sslHandler).addLast(\"tls-close\", new GracefulTlsCloseHandler()).addLast(\"http\", "
                    + "new HttpClientCodec()).addLast(\"http-tls-truncation\", new HttpTlsTruncationHandler())");
        }
        tlsClose = ctx.pipeline().get(GracefulTlsCloseHandler.class);
        tlsClose.messageCompleted(); // marks from now on: between messages until a head is decoded
    }

    /** Null if this handler sits where it sees every HTTP object as it is decoded, else what is wrong. */
    private String placement(ChannelHandlerContext ctx) {
        boolean tlsClose = false;
        String decoder = null;
        for (Map.Entry<String, ChannelHandler> e : ctx.pipeline()) {
            ChannelHandler h = e.getValue();
            if (h == this) {
                break;
            }
            if (h instanceof GracefulTlsCloseHandler) {
                tlsClose = true;
            } else if (h instanceof HttpClientCodec || h instanceof HttpServerCodec || h instanceof HttpObjectDecoder) {
                if (!tlsClose) {
                    return "needs a " + GracefulTlsCloseHandler.class.getSimpleName() + " before the HTTP codec '"
                            + e.getKey() + "'";
                }
                decoder = e.getKey();
            } else if (h instanceof MessageAggregator && decoder != null) {
                return "must come before the aggregator '" + e.getKey() + "': behind it, a message is only seen "
                        + "complete";
            }
        }
        if (!tlsClose) {
            return "needs a " + GracefulTlsCloseHandler.class.getSimpleName() + " before it";
        }
        return decoder == null ? "must come after an HTTP codec (HttpClientCodec, HttpServerCodec, or an "
                + "HttpObjectDecoder)" : null;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof HttpMessage) {
            HttpMessage head = (HttpMessage) msg;
            request = head instanceof HttpRequest;
            if (head.decoderResult().isFailure()) {
                // The decoder rejected this head and discards the rest of the connection: no content and no end
                // follow, so the message is over, failed, as it arrives (never marked in progress). Its framing
                // headers may be what the decoder rejected (an unparsable Content-Length): they are not read.
                inMessage = false;
                if (unclean != null) {
                    // Its last words after the outcome: a head cut short.
                    head.setDecoderResult(DecoderResult.failure(cut(head.decoderResult().cause())));
                }
            } else {
                begin(head);
            }
        }
        if (msg instanceof HttpContent && inMessage) {
            received += ((HttpContent) msg).content().readableBytes();
        }
        if (msg instanceof LastHttpContent && inMessage) {
            inMessage = false;
            if (unclean != null && ((LastHttpContent) msg).decoderResult().isSuccess()) {
                // A body delimited by the end of the connection, which was not clean.
                LastHttpContent last = (LastHttpContent) msg;
                msg = failedLast(last.content(), cut(null));
            } else {
                tlsClose.messageCompleted();
            }
        }
        ctx.fireChannelRead(msg);
    }

    private void begin(HttpMessage head) {
        inMessage = true;
        chunked = HttpUtil.isTransferEncodingChunked(head);
        contentLength = chunked ? -1L : contentLength(head);
        received = 0;
        if (unclean == null) {
            tlsClose.messageStarted();
        }
    }

    /** The head's Content-Length, or -1 if it has none, or none this handler can read (it never throws). */
    private static long contentLength(HttpMessage head) {
        try {
            return HttpUtil.getContentLength(head, -1L);
        } catch (NumberFormatException e) {
            return -1L;
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof TlsCloseEvent && !((TlsCloseEvent) evt).isClean()) {
            unclean = (TlsCloseEvent) evt;
        } else if (evt instanceof ChannelInputShutdownEvent) {
            endCutMessage(ctx); // after the decoder's last words
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        endCutMessage(ctx);
        ctx.fireChannelInactive();
    }

    /** A cut message that the decoder left without an end (Content-Length, chunked, any request) ends, failed. */
    private void endCutMessage(ChannelHandlerContext ctx) {
        if (inMessage && unclean != null) {
            inMessage = false;
            ctx.fireChannelRead(failedLast(Unpooled.EMPTY_BUFFER, cut(null)));
        }
    }

    private static LastHttpContent failedLast(ByteBuf content, TlsTruncationException cause) {
        LastHttpContent last = new DefaultLastHttpContent(content);
        last.setDecoderResult(DecoderResult.failure(cause));
        return last;
    }

    /** Where the stream was cut, in HTTP's terms, with the outcome's cause as its cause. */
    private TlsTruncationException cut(Throwable decoderCause) {
        StringBuilder b = new StringBuilder(160).append("the TLS stream ended without the peer's close_notify (")
                .append(unclean.status()).append(") inside an HTTP ").append(request ? "request" : "response");
        if (decoderCause != null) {
            b.append(" head");
        } else {
            b.append(" body, after ").append(received).append(" bytes of content");
            if (chunked) {
                b.append(" (chunked)");
            } else if (contentLength >= 0) {
                b.append(" of ").append(contentLength).append(" (Content-Length)");
            } else {
                b.append(" (delimited by the end of the connection)");
            }
        }
        TlsTruncationException e = new TlsTruncationException(b.toString(), unclean.cause());
        if (decoderCause != null) {
            e.addSuppressed(decoderCause);
        }
        return e;
    }
}
