package io.github.gracefultls;

/**
 * Which side began a TLS closure.
 */
public enum TlsCloseInitiator {
    /** This side began: {@code close()}, {@code disconnect()}, {@code bye()} or {@code shutdownOutput()}. */
    LOCAL,
    /** The peer began: its {@code close_notify}, or the end of its transport, arrived first. */
    PEER
}
