package io.github.gracefultls.interop;

import io.github.gracefultls.testing.Peers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The availability check: every peer is found here; a missing one skips locally and fails in CI, naming its package. */
@ExtendWith(InteropReport.class)
class PeersTest {

    @ParameterizedTest(name = "{0}")
    @EnumSource(Peers.Program.class)
    void peerIsInstalled(Peers.Program program) {
        Path path = Peers.require(program);
        InteropReport.observe(path + " (Debian package " + program.debianPackage() + ")");
        assertThat(path).isAbsolute().isExecutable();
    }

    @Test
    void missingPeerSkipsOutsideCiNamingThePackage() {
        assertThatThrownBy(() -> Peers.require("no-such-peer-binary", "no-such-package", false))
                .isInstanceOf(TestAbortedException.class)
                .hasMessageContaining("no-such-peer-binary")
                .hasMessageContaining("apt-get install no-such-package");
    }

    @Test
    void missingPeerFailsInCiNamingThePackage() {
        assertThatThrownBy(() -> Peers.require("no-such-peer-binary", "no-such-package", true))
                .isInstanceOf(AssertionFailedError.class)
                .hasMessageContaining("no-such-peer-binary")
                .hasMessageContaining("apt-get install no-such-package")
                .hasMessageContaining("CI=true");
    }
}
