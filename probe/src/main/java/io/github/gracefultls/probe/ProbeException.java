package io.github.gracefultls.probe;

/**
 * A failure the probe reports in one line and with exit code {@value TlsCloseProbe#EXIT_ERROR}: bad arguments, a
 * host that cannot be resolved or reached, a failed handshake. The message is written for the user; the cause is
 * printed only with {@code --verbose}.
 */
final class ProbeException extends Exception {

    private static final long serialVersionUID = 1L;

    ProbeException(String message) {
        super(message);
    }

    ProbeException(String message, Throwable cause) {
        super(message, cause);
    }
}
