/**
 * The TLS closure's verdict for HTTP: {@link io.github.gracefultls.http.HttpTlsTruncationHandler} (HTTP/1.x) and
 * {@link io.github.gracefultls.http.Http2StreamMarks} (HTTP/2, which needs {@code netty-codec-http2}).
 */
module io.github.gracefultls.http {
    requires transitive io.github.gracefultls;
    requires transitive io.netty.codec.http;
    requires static io.netty.codec.http2;
    requires io.netty.buffer;
    requires io.netty.codec;

    exports io.github.gracefultls.http;
}
