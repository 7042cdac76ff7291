package io.github.gracefultls.reactor;

import io.github.gracefultls.TlsCloseEvent;
import io.netty.channel.Channel;

import java.net.SocketAddress;
import java.util.Objects;

/**
 * The TLS closure of one Reactor Netty connection: its {@link TlsCloseEvent} and the channel it was on. Given to the
 * listeners of {@link ReactorNettyTlsClose.Builder#onClose} and emitted by {@link ReactorNettyTlsClose#closures()}.
 *
 * <p>Immutable. The channel is closed or closing by the time most closures are seen; read what you need from it (its
 * addresses, its attributes) rather than keep it.
 */
public final class TlsClosure {

    private final Channel channel;
    private final TlsCloseEvent event;

    TlsClosure(Channel channel, TlsCloseEvent event) {
        this.channel = Objects.requireNonNull(channel, "channel");
        this.event = Objects.requireNonNull(event, "event");
    }

    /**
     * Returns the channel whose TLS session closed.
     *
     * @return the channel
     */
    public Channel channel() {
        return channel;
    }

    /**
     * Returns the outcome, as {@link io.github.gracefultls.GracefulTlsCloseHandler#closeFuture()} gave it.
     *
     * @return the outcome
     */
    public TlsCloseEvent event() {
        return event;
    }

    /**
     * Returns the peer's address: {@code channel().remoteAddress()}, which Netty keeps after the channel closed.
     *
     * @return the peer's address, or {@code null} if the channel never had one
     */
    public SocketAddress remoteAddress() {
        return channel.remoteAddress();
    }

    @Override
    public String toString() {
        return "TlsClosure(" + channel + ", " + event + ")";
    }
}
