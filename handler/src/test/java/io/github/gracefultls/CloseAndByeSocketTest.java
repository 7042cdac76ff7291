package io.github.gracefultls;

import io.github.gracefultls.testing.LoopLateness;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.stream.Stream;

import static io.github.gracefultls.testing.TlsSockets.payload;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * SPEC operations 1 and 2 over real sockets: {@code close()} waits for the peer's close_notify within one round trip,
 * discards data during the wait, times out on a silent peer (as {@code shutdownOutput()} does, operation 4), and
 * {@code bye(SHUT_RDWR)} hands the transport back for plaintext.
 */
class CloseAndByeSocketTest extends SocketClosureTestBase {

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void closeWaitsForPeerCloseNotifyWithinOneRoundTrip(SslProvider provider, String protocol) throws Exception {
        Peer peer = startNettyPeer(provider, protocol, new GracefulTlsCloseHandler());
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build());
        peer.awaitHandshake();

        byte[] data = payload(1024 * 1024);
        int chunk = 64 * 1024;
        for (int i = 0; i < data.length; i += chunk) {
            client.channel.write(Unpooled.wrappedBuffer(data, i, chunk)); // no waiting
        }
        client.channel.flush();
        TlsCloseEvent event;
        try (LoopLateness late = LoopLateness.watch(client.channel.eventLoop())) {
            ChannelFuture closed = client.channel.close();

            closed.get(AWAIT_SECONDS, SECONDS);
            assertThat(closed.isSuccess()).isTrue();
            event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
            assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
            assertThat(event.elapsed()).as("no wait for the read timeout").isLessThan(late.allow(SLACK));
        }
        assertThat(event.discardedBytes()).isZero();
        assertThat(event.cause()).isNull();
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();

        // The peer got every byte, and then our close_notify.
        TlsCloseEvent peerEvent = peer.rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        assertEvent(peerEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        List<Object> peerTimeline = peer.rec.timeline();
        assertThat(bytesReadBefore(peerTimeline, peerTimeline.indexOf(peerEvent))).isEqualTo(data.length);
        assertThat(peer.rec.receivedBytes()).isEqualTo(data);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void dataDuringOurCloseWaitIsDiscardedNotTakenForCloseNotify(SslProvider provider, String protocol)
            throws Exception {
        byte[] late = "late data".getBytes(StandardCharsets.US_ASCII);
        AtomicLong lateDataWrittenAt = new AtomicLong();
        JdkPeer peer = startJdkPeer(protocol, (plain, ssl, release) -> {
            sendPing(ssl);
            // Our close_notify arrives (read raw, below TLS: the peer's TLS never sees it) ...
            if (plain.getInputStream().read() < 0) {
                throw new IOException("EOF before our close_notify");
            }
            // ... and the peer goes on sending application data, never its close_notify.
            ssl.getOutputStream().write(late);
            ssl.getOutputStream().flush();
            lateDataWrittenAt.set(System.nanoTime());
            awaitRelease(release);
        });
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(SHORT_TIMEOUT).build());
        client.rec.awaitBytes(PING.length(), AWAIT);

        TlsCloseEvent event;
        long start = System.nanoTime();
        try (LoopLateness loop = LoopLateness.watch(client.channel.eventLoop())) {
            client.channel.close().get(AWAIT_SECONDS, SECONDS);

            event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
            assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
            assertThat(event.elapsed()).isGreaterThanOrEqualTo(SHORT_TIMEOUT)
                    .isLessThan(loop.allow(SHORT_TIMEOUT.plus(SLACK)));
        }
        assertThat(client.rec.receivedString()).isEqualTo(PING);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
        // The claim needs the data in before the timeout; the peer's thread writes it at once, unless the machine
        // holds it back for half the timeout or more.
        long writtenAt = lateDataWrittenAt.get();
        if (writtenAt == 0 || writtenAt - start >= SHORT_TIMEOUT.toNanos() / 2) {
            LoopLateness.skipBecauseLate((writtenAt == 0 ? "the peer had not written its data"
                    : "the peer wrote its data " + Duration.ofNanos(writtenAt - start).toMillis() + " ms")
                    + " after our close began, against a " + SHORT_TIMEOUT.toMillis() + " ms timeout");
        }
        assertThat(event.discardedBytes()).isEqualTo(late.length);
    }

    /** A closure that waits for the peer: our handler, with the timeout that bounds the wait; how it begins. */
    private record Wait(Function<Duration, GracefulTlsCloseHandler> handler, Function<Client, Future<?>> begin,
                        TlsCloseMode mode) {
    }

    static Stream<Arguments> waits() {
        return Tls.casesWithProvidersAndProtocols(
                named("close(), closeNotifyReadTimeout", new Wait(
                        t -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(t).build(),
                        c -> c.channel.close(), TlsCloseMode.SHUT_RDWR)),
                named("shutdownOutput(), halfCloseTimeout", new Wait(
                        t -> GracefulTlsCloseHandler.builder().halfCloseTimeout(t).build(),
                        c -> GracefulTlsCloseHandler.shutdownOutput(c.channel), TlsCloseMode.SHUT_WR)));
    }

    @ParameterizedTest(name = "{0}, {1} {2}")
    @MethodSource("waits")
    void silentPeerTimesOut(Wait how, SslProvider provider, String protocol) throws Exception {
        JdkPeer peer = startJdkPeer(protocol, (plain, ssl, release) -> {
            sendPing(ssl);
            awaitRelease(release);
        });
        Client client = connect(provider, protocol, peer.address(), how.handler().apply(SHORT_TIMEOUT));
        client.rec.awaitBytes(PING.length(), AWAIT);

        TlsCloseEvent event;
        Duration wallClock;
        try (LoopLateness late = LoopLateness.watch(client.channel.eventLoop())) {
            long start = System.nanoTime();
            how.begin().apply(client).get(AWAIT_SECONDS, SECONDS); // close()'s promise, shutdownOutput()'s future
            wallClock = Duration.ofNanos(System.nanoTime() - start);

            event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
            assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, how.mode());
            assertThat(event.cause()).isInstanceOf(TimeoutException.class);
            assertThat(event.elapsed()).isGreaterThanOrEqualTo(SHORT_TIMEOUT)
                    .isLessThan(late.allow(SHORT_TIMEOUT.plus(SLACK)));
        }
        assertThat(wallClock).isGreaterThanOrEqualTo(SHORT_TIMEOUT);
        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void byeShutRdwrHandsTransportBackForPlaintext(SslProvider provider, String protocol) throws Exception {
        Peer peer = startNettyPeer(provider, protocol,
                GracefulTlsCloseHandler.builder().peerClosePolicy(PeerClosePolicy.REUSE_TRANSPORT).build());
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build());
        Channel peerChannel = peer.awaitHandshake();

        TlsCloseEvent event = client.handler.bye(TlsCloseMode.SHUT_RDWR).get(AWAIT_SECONDS, SECONDS);

        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        TlsCloseEvent peerEvent = peer.rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        assertEvent(peerEvent, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        assertThat(client.channel.isActive()).isTrue();
        assertThat(onEventLoop(client.channel, () -> client.channel.pipeline().get(SslHandler.class))).isNull();
        assertThat(onEventLoop(peerChannel, () -> peerChannel.pipeline().get(SslHandler.class))).isNull();

        // The same TCP connection now carries plaintext, both ways.
        writeString(client.channel, "PLAIN request").get(AWAIT_SECONDS, SECONDS);
        peer.rec.awaitBytes("PLAIN request".length(), AWAIT);
        assertThat(peer.rec.receivedString()).isEqualTo("PLAIN request");
        writeString(peerChannel, "PLAIN response").get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes("PLAIN response".length(), AWAIT);
        assertThat(client.rec.receivedString()).isEqualTo("PLAIN response");
        assertThat(client.rec.eventsOfType(TlsCloseEvent.class)).containsExactly(event);
        assertThat(client.rec.exceptions()).isEmpty();
    }
}
