package io.github.gracefultls;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;

import javax.net.ssl.SSLEngine;
import java.util.Map;

/**
 * Knows, when the transport's input ends, how many bytes of an incomplete TLS record had arrived, so that a
 * truncation can say whether it cut a record. Implemented by {@link RecordFraming}, which the SslHandler's cumulator
 * passes every received buffer through, and by {@link TransportObserver}, before the SslHandler, where that cannot be
 * set up. Where neither is needed, the SslHandler's own buffer tells ({@link SslHandlerAccess}). The handler keeps
 * no reference to its meter, so that an idle connection costs less: {@link #find} finds it when the input ends.
 */
interface InputEndMeter {

    /** Returns the bytes of an incomplete record received so far: 0 at a record boundary, -1 if unknown. */
    int partialRecordBytes(SslHandler ssl);

    /** Stops measuring: leaves the pipeline, or hands the SslHandler its own cumulator back. */
    void detach(ChannelPipeline pipeline, SslHandler ssl);

    /**
     * Sets up what measures the input's end for the SslHandler before {@code ctx}, and returns it, or null when the
     * SslHandler's buffer will tell. With an engine the SslHandler feeds whole records (the JDK's), an incomplete
     * record stays in that buffer, and when the channel goes inactive the SslHandler's close event reaches the
     * handler before the buffer is released: nothing is needed. A FIN under ALLOW_HALF_CLOSURE reaches the handler
     * only after the release, and OpenSSL (and Conscrypt) take partial records into their own buffers: there the
     * record framing is followed, from the first handshake record on, by a {@link RecordFraming} set in front of the
     * SslHandler's cumulator, which adds nothing to the pipeline. Where the cumulator or the buffer cannot be read
     * (the module path on Netty 4.2), or the framing cannot be known (a handler added later) and the buffer can
     * tell, a {@link TransportObserver} before the SslHandler does the work. Behind a handler that puts the SslHandler
     * in place later, a {@link LateSslObserver} follows the framing until then, and {@link #takeOver} decides.
     */
    static InputEndMeter attach(ChannelHandlerContext ctx, ChannelHandlerContext sslCtx) {
        SslHandler ssl = (SslHandler) sslCtx.handler();
        boolean enginePartial = buffersPartialRecords(ssl.engine());
        boolean halfClosure = Boolean.TRUE.equals(ctx.channel().config().getOption(ChannelOption.ALLOW_HALF_CLOSURE));
        boolean bufferReadable = SslHandlerAccess.isAvailable();
        if (!enginePartial && !halfClosure && bufferReadable) {
            return null;
        }
        // Aligned if nothing of the stream can have been missed. When the buffer cannot be read (-1), a handler
        // added before the handshake completed is taken to be added in initChannel, before the first read.
        boolean aligned = !ssl.handshakeFuture().isDone() && SslHandlerAccess.undecodedBytes(ssl) <= 0;
        ByteToMessageDecoder.Cumulator cumulator = SslHandlerAccess.cumulator(ssl);
        if (cumulator != null && (aligned || enginePartial)) {
            RecordFraming framing = new RecordFraming(cumulator, aligned);
            ssl.setCumulator(framing);
            return framing;
        }
        TransportObserver observer = enginePartial || !bufferReadable
                ? new TransportObserver.Following(ssl, aligned)
                : new TransportObserver(ssl); // the JDK's buffer, read before the SslHandler hears of the FIN
        ctx.pipeline().addBefore(sslCtx.name(), null, (ChannelHandler) observer);
        return observer;
    }

    /**
     * Takes over, at a read boundary, from a {@link LateSslObserver} whose framing, {@code followed}, ran from the
     * first byte until the SslHandler was in place. Returns true if the observer can leave: from here on the
     * SslHandler's buffer tells, or a {@link RecordFraming} in front of its cumulator, going on from
     * {@code followed}, as in a plain pipeline. Returns false if the observer must stay: the cumulator cannot be read.
     */
    static boolean takeOver(ChannelHandlerContext ctx, SslHandler ssl, RecordFraming followed) {
        boolean enginePartial = buffersPartialRecords(ssl.engine());
        boolean halfClosure = Boolean.TRUE.equals(ctx.channel().config().getOption(ChannelOption.ALLOW_HALF_CLOSURE));
        if (!enginePartial && !halfClosure && SslHandlerAccess.isAvailable()) {
            return true;
        }
        ByteToMessageDecoder.Cumulator cumulator = SslHandlerAccess.cumulator(ssl);
        if (cumulator == null || cumulator instanceof RecordFraming) {
            return false;
        }
        ssl.setCumulator(new RecordFraming(cumulator, followed));
        return true;
    }

    /** Whether the SslHandler hands this engine partial records, as it does for the engines Netty runs natively. */
    private static boolean buffersPartialRecords(SSLEngine engine) {
        for (Class<?> c = engine.getClass(); c != null; c = c.getSuperclass()) {
            String name = c.getName();
            if (name.equals("io.netty.handler.ssl.ReferenceCountedOpenSslEngine")
                    || name.equals("io.netty.handler.ssl.ConscryptAlpnSslEngine")) {
                return true;
            }
        }
        return false;
    }

    /** The meter {@link #attach} set up for {@code ssl}, or null. */
    static InputEndMeter find(ChannelHandlerContext ctx, SslHandler ssl) {
        ByteToMessageDecoder.Cumulator cumulator = SslHandlerAccess.cumulator(ssl);
        if (cumulator instanceof RecordFraming) {
            return (RecordFraming) cumulator;
        }
        ChannelPipeline pipeline = ctx.pipeline();
        TransportObserver first = pipeline.get(TransportObserver.class);
        if (first == null || first.observes(ssl)) {
            return first;
        }
        for (Map.Entry<String, ChannelHandler> e : pipeline) { // more than one TLS layer
            if (e.getValue() instanceof TransportObserver && ((TransportObserver) e.getValue()).observes(ssl)) {
                return (TransportObserver) e.getValue();
            }
        }
        return null;
    }

    /** Detaches the meter of {@code ssl}, if any. */
    static void detach(ChannelHandlerContext ctx, SslHandler ssl) {
        InputEndMeter m = find(ctx, ssl);
        if (m != null) {
            try {
                m.detach(ctx.pipeline(), ssl);
            } catch (RuntimeException e) {
                GracefulTlsCloseHandler.logger.debug("{} could not detach {}", ctx.channel(), m, e);
            }
        }
    }

    /**
     * Returns the bytes of a TLS record cut by the end of the input, from the meter, or, without one, from the
     * SslHandler's buffer if it still holds them ({@code bufferHeld}), else -1.
     */
    static int partialRecordBytes(ChannelHandlerContext ctx, SslHandler ssl, boolean bufferHeld) {
        InputEndMeter meter = find(ctx, ssl);
        if (meter != null) {
            return meter.partialRecordBytes(ssl);
        }
        return bufferHeld ? SslHandlerAccess.undecodedBytes(ssl) : -1;
    }

    /**
     * Returns the cause of a truncation: {@code what} happened, at a record boundary or inside a record, as
     * {@code partialRecordBytes} says (-1: unknown).
     */
    static TlsTruncationException truncation(String what, int partialRecordBytes, Throwable cause) {
        String where;
        if (partialRecordBytes > 0) {
            where = "inside a TLS record (" + partialRecordBytes + " bytes of it had arrived)";
        } else if (partialRecordBytes == 0) {
            where = "at a TLS record boundary";
        } else {
            where = "(record boundary unknown)";
        }
        return new TlsTruncationException(what + ", " + where, partialRecordBytes, cause);
    }
}
