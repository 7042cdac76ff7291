package io.github.gracefultls;

import io.github.gracefultls.testing.LoopLateness;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.stream.Stream;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * SPEC operation 6, the transport ends first, over real sockets: a FIN (at a record boundary or inside a record) or a
 * reset without the peer's close_notify, while idle or during our wait, is {@code TRUNCATED}.
 */
class TruncationSocketTest extends SocketClosureTestBase {

    /** Where the peer's FIN, without close_notify, ends its stream: the bytes of a cut record that reach us. */
    static Stream<Arguments> fins() {
        // Inside a record: more than a record header, less than the record.
        return Tls.casesWithProvidersAndProtocols(named("at a record boundary", 0), named("inside a record", 10));
    }

    @ParameterizedTest(name = "FIN {0}, {1} {2}")
    @MethodSource("fins")
    void peerFinWithoutCloseNotifyIsTruncated(int cutAt, SslProvider provider, String protocol) throws Exception {
        Peer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler());
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        int receivedBefore = client.rec.receivedBytes().length;

        if (cutAt == 0) {
            ((DuplexChannel) peerChannel).shutdownOutput().get(AWAIT_SECONDS, SECONDS); // FIN, no close_notify
        } else {
            onEventLoop(peerChannel, () -> peer.wire.truncateNextWriteTo = cutAt);
            writeString(peerChannel, "x".repeat(100)).get(AWAIT_SECONDS, SECONDS); // the first bytes, then FIN
        }

        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        TlsCloseEvent event = client.rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER, null);
        assertThat(event.elapsed()).isEqualTo(Duration.ZERO);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.isInsideRecord()).as("%s", cause).isEqualTo(cutAt > 0);
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(cutAt);
        assertThat(client.rec.receivedBytes()).hasSize(receivedBefore);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
        // We still said goodbye: the peer got our close_notify.
        peer.rec.awaitCondition(r -> indexOf(r.timeline(), SocketClosureTestBase::isSuccessfulSslClose) >= 0, AWAIT,
                "the peer's SslCloseCompletionEvent.SUCCESS");
    }

    /** Without ALLOW_HALF_CLOSURE the FIN closes the channel: the cut record is still counted. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerFinInsideRecordWithoutHalfClosureIsTruncatedInsideRecord(SslProvider provider, String protocol)
            throws Exception {
        int cutAt = 12;
        Peer peer = startNettyPeer(provider, protocol, null);
        Client client = sockets.connect(Tls.clientContext(provider, protocol), peer.address(),
                new GracefulTlsCloseHandler(), new RecordingHandler(),
                b -> b.option(ChannelOption.ALLOW_HALF_CLOSURE, false));
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);

        onEventLoop(peerChannel, () -> peer.wire.truncateNextWriteTo = cutAt);
        writeString(peerChannel, "x".repeat(100)).get(AWAIT_SECONDS, SECONDS); // the first 12 bytes, then FIN

        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        TlsCloseEvent event = client.rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER, null);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(cutAt);
        assertThat(cause).hasMessageContaining("inactive");
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerFinDuringOurCloseWaitIsTruncated(SslProvider provider, String protocol) throws Exception {
        Peer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build());
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        // The peer never lets its TLS see our close_notify: it answers it with a bare FIN.
        onEventLoop(peerChannel, () -> peer.wire.deafThen(ctx -> ((DuplexChannel) ctx.channel()).shutdownOutput()));

        TlsCloseEvent event;
        try (LoopLateness late = LoopLateness.watch(client.channel.eventLoop())) {
            client.channel.close().get(AWAIT_SECONDS, SECONDS);

            event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
            assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
            assertThat(event.elapsed()).isLessThan(late.allow(SLACK));
        }
        TlsTruncationException cause = truncation(event);
        assertThat(cause.isInsideRecord()).isFalse();
        assertThat(peer.wire.deafBytes.get()).as("our close_notify reached the peer's socket").isPositive();
        assertThat(indexOf(peer.rec.timeline(), SocketClosureTestBase::isSuccessfulSslClose)).isNegative();
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerResetWhileIdleIsTruncated(SslProvider provider, String protocol) throws Exception {
        Peer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler());
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);

        // RST: SO_LINGER 0, and a close below the peer's SslHandler, so no close_notify.
        onEventLoop(peerChannel, () -> {
            peerChannel.config().setOption(ChannelOption.SO_LINGER, 0);
            return peer.wire.ctx.close();
        }).get(AWAIT_SECONDS, SECONDS);

        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        TlsCloseEvent event = client.rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER, null);
        assertThat(event.cause()).isInstanceOf(TlsTruncationException.class);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).as("a reset is an outcome, not an exception").isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerResetDuringOurCloseWaitIsTruncated(SslProvider provider, String protocol) throws Exception {
        JdkPeer peer = startJdkPeer(protocol, (plain, ssl, release) -> {
            sendPing(ssl);
            // Reads our close_notify as raw bytes, below TLS, and answers with a reset.
            InputStream raw = plain.getInputStream();
            if (raw.read() < 0) {
                throw new IOException("EOF before our close_notify");
            }
            plain.setSoLinger(true, 0);
            plain.close();
        });
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build());
        client.rec.awaitBytes(PING.length(), AWAIT);

        TlsCloseEvent event;
        try (LoopLateness late = LoopLateness.watch(client.channel.eventLoop())) {
            client.channel.close().get(AWAIT_SECONDS, SECONDS);

            event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
            assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
            assertThat(event.elapsed()).isLessThan(late.allow(SLACK));
        }
        assertThat(event.cause()).isInstanceOf(TlsTruncationException.class);
        peer.done.get(AWAIT_SECONDS, SECONDS);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).as("a reset is an outcome, not an exception").isEmpty();
    }
}
