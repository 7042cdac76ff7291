package io.github.gracefultls.interop;

import java.nio.file.Path;

/**
 * rustls 0.20 (Debian {@code librust-rustls-dev}, built offline with Debian's {@code cargo}) as client and server:
 * {@code src/test/peers/rustls}, built by {@link ForeignPeers#rustls()}. rustls tells a close_notify from a bare
 * end of stream itself ({@code Ok(0)} against {@code UnexpectedEof} from its reader), and that is the peer's
 * verdict. The cases: {@link CompiledPeerTest}.
 */
class RustlsPeerTest extends CompiledPeerTest {

    @Override
    Path binary() {
        return ForeignPeers.rustls();
    }

    @Override
    String name() {
        return "rustls";
    }
}
