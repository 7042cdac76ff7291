package io.github.gracefultls.http;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2Stream;

import java.util.Objects;

/**
 * Marks HTTP/2 messages for the channel's {@link TlsCloseEvent}: while the peer may still send on any stream, an
 * end of the TLS stream comes {@link MessageState#IN_MESSAGE}; with none (idle, or every stream done, also after a
 * {@code GOAWAY}) it comes {@link MessageState#BETWEEN_MESSAGES}. HTTP/2 needs nothing more to keep a cut stream
 * from looking complete: a stream ends only with its {@code END_STREAM} flag, which a cut connection never delivers.
 *
 * <p>A stream counts while its inbound half is open ({@code open} or {@code half-closed (local)}, RFC 9113 §5.1), as
 * {@link MessageState} speaks of inbound messages only: a client waiting for, or reading, a response is in a message;
 * a server that has the whole request and is still writing its response is not, so a client that drops the
 * connection during a download (a user who cancels) does not count as a cut message on the server, as with HTTP/1.x.
 *
 * <p>Attach it once the HTTP/2 codec is in the pipeline, for example in
 * {@code ApplicationProtocolNegotiationHandler.configurePipeline} after adding the {@code Http2FrameCodec}:
 * <pre>
 * Http2FrameCodec codec = Http2FrameCodecBuilder.forServer().gracefulShutdownTimeoutMillis(30_000).build();
 * ctx.pipeline().addLast(codec, new Http2MultiplexHandler(streamInitializer));
 * Http2StreamMarks.attach(codec, ctx.pipeline().get(GracefulTlsCloseHandler.class));
 * </pre>
 * Needs {@code netty-codec-http2} on the class path. Runs on the event loop, as the codec's listeners do. Each
 * change of a stream's state counts the active streams again (the codec's own listeners do as much work).
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
        mark();
    }

    @Override
    public void onStreamHalfClosed(Http2Stream stream) {
        mark();
    }

    @Override
    public void onStreamClosed(Http2Stream stream) {
        mark(); // the connection has already taken the stream out of its active streams
    }

    private void mark() {
        boolean receiving;
        try {
            receiving = connection.forEachActiveStream(stream -> !isInboundOpen(stream)) != null;
        } catch (Http2Exception e) {
            throw new IllegalStateException(e); // our visitor throws none
        }
        if (receiving) {
            tlsClose.messageStarted();
        } else {
            tlsClose.messageCompleted();
        }
    }

    private static boolean isInboundOpen(Http2Stream stream) {
        Http2Stream.State state = stream.state();
        return state == Http2Stream.State.OPEN || state == Http2Stream.State.HALF_CLOSED_LOCAL;
    }
}
