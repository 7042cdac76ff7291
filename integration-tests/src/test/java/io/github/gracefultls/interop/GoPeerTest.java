package io.github.gracefultls.interop;

import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Go's {@code crypto/tls} (Debian {@code golang-go}) as client and server: {@code src/test/peers/go/tls_peer.go},
 * built by {@link ForeignPeers#go()}. Go's {@code Conn.Read} returns {@code io.EOF} for a bare FIN at a record
 * boundary just as for a close_notify; the peer therefore judges from the raw connection under {@code crypto/tls}
 * (did the socket itself report its end of stream?), and {@link #ourServerTruncatesAndTheClientSeesNoCloseNotify} /
 * {@link #ourClientTruncatesAndTheServerSeesNoCloseNotify} prove that it tells the two apart. The cases:
 * {@link CompiledPeerTest}.
 */
class GoPeerTest extends CompiledPeerTest {

    @Override
    Path binary() {
        return ForeignPeers.go();
    }

    /** The reason for the raw-connection verdict: Read's own error is the io.EOF a close_notify also gives. */
    @Override
    void assertPeerReportOfOurTruncation(Map<String, String> peer) {
        assertThat(peer).as("Conn.Read's error, and the socket's own end of stream").containsEntry("read-error", "EOF")
                .containsEntry("raw-eof", "true");
    }

    @Override
    String name() {
        return "go";
    }
}
