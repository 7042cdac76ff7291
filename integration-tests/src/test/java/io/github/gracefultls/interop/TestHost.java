package io.github.gracefultls.interop;

import io.github.gracefultls.testing.TestCertificates;

/** The name peers use to reach our server: in the test certificate's SAN, and resolving to 127.0.0.1. */
final class TestHost {

    static final String NAME = TestCertificates.HOSTNAME;

    private TestHost() {
    }
}
