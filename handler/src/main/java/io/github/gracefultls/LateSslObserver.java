package io.github.gracefultls;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.ssl.SslHandler;

import java.util.Map;

/**
 * Sits before a handler that puts its SslHandler in place only once the first bytes arrived ({@code SniHandler} and
 * every {@code SslClientHelloHandler}, {@code OptionalSslHandler}), so that the TLS record framing is followed from
 * the first byte, ClientHello included, and a truncation still says whether it cut a record. Around each read, until
 * that handler has left, it asks the {@link ClosureDriver} to look again: the driver then binds to the SslHandler, or
 * learns that the connection is not TLS.
 *
 * <p>Once the driver is bound, at a read boundary, where every byte followed here has reached the SslHandler, the
 * observer hands its framing to the meter the plain pipeline would have had ({@link InputEndMeter#takeOver}) and
 * leaves the read path; where no such meter can be set up it stays, as a {@link TransportObserver.Following}.
 */
final class LateSslObserver extends TransportObserver.Following {

    private final ClosureDriver driver;
    /** False until the driver is bound (the observer then hands over or stays) or the connection is not TLS. */
    private boolean settled;

    private LateSslObserver(ClosureDriver driver, boolean aligned) {
        super(null, aligned);
        this.driver = driver;
    }

    /**
     * Sets up an observer before {@code lateCtx}, whose handler puts the SslHandler in place later. The framing is
     * aligned if that handler holds no byte yet; when that cannot be read, the handler is taken to be added in
     * {@code initChannel}, before the first read, as {@link InputEndMeter#attach} does.
     */
    static void attach(ClosureDriver driver, ChannelHandlerContext lateCtx) {
        ChannelHandler late = lateCtx.handler();
        boolean aligned = !(late instanceof ByteToMessageDecoder)
                || SslHandlerAccess.undecodedBytes((ByteToMessageDecoder) late) <= 0;
        lateCtx.pipeline().addBefore(lateCtx.name(), null, new LateSslObserver(driver, aligned));
    }

    /** The observer set up for {@code driver}, or null. */
    static LateSslObserver find(ChannelPipeline pipeline, ClosureDriver driver) {
        for (Map.Entry<String, ChannelHandler> e : pipeline) {
            if (e.getValue() instanceof LateSslObserver && ((LateSslObserver) e.getValue()).driver == driver) {
                return (LateSslObserver) e.getValue();
            }
        }
        return null;
    }

    @Override
    boolean observes(SslHandler ssl) {
        return ssl != null && ssl == driver.sslHandler;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        // Before: the SslHandler may have come between reads (an asynchronous SNI lookup completed).
        if (!settled && settle(ctx)) {
            ctx.fireChannelRead(msg); // left: the SslHandler's cumulator, or nothing, follows from here
            return;
        }
        super.channelRead(ctx, msg);
        // After: SniHandler and OptionalSslHandler put the SslHandler in place while decoding this read.
        if (!settled) {
            settle(ctx);
        }
    }

    /** Returns true if the observer left the pipeline. */
    private boolean settle(ChannelHandlerContext ctx) {
        if (ctx.isRemoved()) { // by the driver, which left the pipeline
            settled = true;
            return true;
        }
        driver.checkSslHandler();
        if (driver.awaitsSslHandler()) {
            return false;
        }
        settled = true;
        SslHandler ssl = driver.sslHandler;
        if (ssl == null || SslPipeline.isRemoved(ctx, ssl) || InputEndMeter.takeOver(ctx, ssl, framing)) {
            SslPipeline.removeQuietly(ctx, this);
            return true;
        }
        return false;
    }
}
