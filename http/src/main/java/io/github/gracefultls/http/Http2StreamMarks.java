package io.github.gracefultls.http;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Stream;

import java.util.Objects;

/**
 * Marks HTTP/2 messages for the channel's {@link TlsCloseEvent}: while any stream is open, an end of the TLS stream
 * comes {@link MessageState#IN_MESSAGE}; with none (idle, or every stream done after a {@code GOAWAY}) it comes
 * {@link MessageState#BETWEEN_MESSAGES}. HTTP/2 needs nothing more to keep a cut stream from looking complete: a
 * stream ends only with its {@code END_STREAM} flag, which a cut connection never delivers.
 *
 * <p>Attach it once the HTTP/2 codec is in the pipeline, for example in
 * {@code ApplicationProtocolNegotiationHandler.configurePipeline} after adding the {@code Http2FrameCodec}:
 * <pre>
 * Http2FrameCodec codec = Http2FrameCodecBuilder.forServer().gracefulShutdownTimeoutMillis(30_000).build();
 * ctx.pipeline().addLast(codec, new Http2MultiplexHandler(streamInitializer));
 * Http2StreamMarks.attach(codec, ctx.pipeline().get(GracefulTlsCloseHandler.class));
 * </pre>
 * Needs {@code netty-codec-http2} on the class path. Runs on the event loop, as the codec's listeners do.
 */
public final class Http2StreamMarks extends Http2ConnectionAdapter {

    private final Http2Connection connection;
    private final GracefulTlsCloseHandler tlsClose;

    private Http2StreamMarks(Http2Connection connection, GracefulTlsCloseHandler tlsClose) {
        this.connection = connection;
        this.tlsClose = tlsClose;
    }

    /**
     * Marks the streams of {@code codec}'s connection from now on, starting with those open now.
     *
     * @param codec the HTTP/2 codec ({@code Http2FrameCodec} or another {@link Http2ConnectionHandler})
     * @param tlsClose the channel's handler, whose outcome carries the marks
     * @return the listener, added to the codec's connection
     */
    public static Http2StreamMarks attach(Http2ConnectionHandler codec, GracefulTlsCloseHandler tlsClose) {
        Objects.requireNonNull(codec, "codec");
        Objects.requireNonNull(tlsClose, "tlsClose");
        Http2StreamMarks marks = new Http2StreamMarks(codec.connection(), tlsClose);
        marks.mark();
        codec.connection().addListener(marks);
        return marks;
    }

    @Override
    public void onStreamActive(Http2Stream stream) {
        tlsClose.messageStarted();
    }

    @Override
    public void onStreamClosed(Http2Stream stream) {
        mark();
    }

    private void mark() {
        if (connection.numActiveStreams() > 0) {
            tlsClose.messageStarted();
        } else {
            tlsClose.messageCompleted();
        }
    }
}
