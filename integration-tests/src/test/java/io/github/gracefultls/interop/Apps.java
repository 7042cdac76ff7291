package io.github.gracefultls.interop;

import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;

/** Small application handlers for our side, placed between the {@code GracefulTlsCloseHandler} and the recorder. */
final class Apps {

    private Apps() {
    }

    /**
     * On the peer's close_notify (a clean {@link TlsCloseEvent} with initiator PEER) writes {@code response}, then
     * closes the channel. {@link #writeOutcome} completes with null when the write succeeded, else its failure.
     */
    static final class RespondAfterPeerClose extends ChannelInboundHandlerAdapter {
        final byte[] response;
        final CompletableFuture<Throwable> writeOutcome = new CompletableFuture<>();

        RespondAfterPeerClose(String response) {
            this.response = response.getBytes(StandardCharsets.US_ASCII);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            ctx.fireUserEventTriggered(evt);
            if (evt instanceof TlsCloseEvent && ((TlsCloseEvent) evt).initiator() == TlsCloseInitiator.PEER
                    && ((TlsCloseEvent) evt).isClean()) {
                ctx.writeAndFlush(Unpooled.wrappedBuffer(response)).addListener(f -> {
                    writeOutcome.complete(f.cause());
                    ctx.channel().close();
                });
            }
        }
    }

    /** What {@link RespondToLineThenClose} does once the response is flushed. */
    enum Then {
        /** {@code close()}: our SHUT_RDWR. */
        CLOSE,
        /** Closes the transport below every handler: no close_notify, a deliberate truncation. */
        TRUNCATE,
        /** Nothing: the peer ends the connection. */
        NOTHING
    }

    /**
     * Once {@code terminator} has arrived (a line, or the end of an HTTP request's headers), writes {@code response},
     * then, once it is flushed, does {@link Then what it is told}.
     */
    static final class RespondToLineThenClose extends ChannelInboundHandlerAdapter {
        private final String terminator;
        private final byte[] response;
        private final Then then;
        private final StringBuilder request = new StringBuilder();
        private boolean responded;

        RespondToLineThenClose(byte[] response, boolean truncate) {
            this("\n", response, truncate ? Then.TRUNCATE : Then.CLOSE);
        }

        RespondToLineThenClose(String terminator, byte[] response, Then then) {
            this.terminator = terminator;
            this.response = response;
            this.then = then;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf && !responded) {
                request.append(((ByteBuf) msg).toString(StandardCharsets.ISO_8859_1));
                if (request.indexOf(terminator) >= 0) {
                    responded = true;
                    ctx.writeAndFlush(Unpooled.wrappedBuffer(response)).addListener(f -> {
                        if (then == Then.TRUNCATE) {
                            ctx.pipeline().firstContext().close();
                        } else if (then == Then.CLOSE) {
                            ctx.channel().close();
                        }
                    });
                }
            }
            ctx.fireChannelRead(msg);
        }
    }
}
