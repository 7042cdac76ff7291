package io.github.gracefultls;

import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SslHandler;

/**
 * Knows, when the transport's input ends, how many bytes of an incomplete TLS record had arrived, so that a
 * truncation can say whether it cut a record: a {@link RecordFraming} that the SslHandler's cumulator passes every
 * received buffer through, or, where that cannot be set up, a {@link TransportObserver} before the SslHandler.
 */
interface InputEndWatcher {

    /** Returns the bytes of an incomplete record received so far: 0 at a record boundary, -1 if unknown. */
    int partialRecordBytes(SslHandler ssl);

    /** Stops watching: leaves the pipeline, or hands the SslHandler its own cumulator back. */
    void detach(ChannelPipeline pipeline, SslHandler ssl);
}
