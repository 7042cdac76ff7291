package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsRecords;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Wire;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static io.github.gracefultls.testing.TlsSockets.payload;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * Closures over real loopback TCP connections, for what {@code EmbeddedChannel} cannot show: TCP half-close (FIN),
 * reset (RST), and the order of {@code close_notify} and FIN on the wire. Re-run per transport by small subclasses,
 * like Netty's {@code SocketHalfClosedTest}.
 *
 * <p>"Our side" is a client channel with {@code SslHandler}, {@link GracefulTlsCloseHandler} and a
 * {@link RecordingHandler}. The peer is a Netty server channel whose first handler, a {@link Wire}, acts below its
 * {@code SslHandler} (FIN, RST, deafness, a cut record), or a JDK {@code SSLSocket} on its own thread. Every channel
 * has {@link ChannelOption#ALLOW_HALF_CLOSURE} on.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class SocketClosureTest {

    /** Bound for every wait on an outcome that should come at once. */
    private static final long AWAIT_SECONDS = 5;
    private static final Duration AWAIT = Duration.ofSeconds(AWAIT_SECONDS);
    /** Allowed beyond a configured timeout, and the bound for "well before the timeout". */
    private static final Duration SLACK = Duration.ofSeconds(2);
    /** A timeout that is the expected outcome. */
    private static final Duration SHORT_TIMEOUT = Duration.ofMillis(300);
    /** A timeout that must not be reached. */
    private static final Duration LONG_TIMEOUT = Duration.ofSeconds(10);

    /** How the subclass's transport makes an event loop group, and its channel classes. */
    private final Supplier<EventLoopGroup> newEventLoopGroup;
    private final Class<? extends Channel> channelClass;
    private final Class<? extends ServerChannel> serverChannelClass;
    private EventLoopGroup group;
    /** Our side and the peers of the current test, closed after it. */
    private TlsSockets sockets;

    protected SocketClosureTest(Supplier<EventLoopGroup> newEventLoopGroup, Class<? extends Channel> channelClass,
                                Class<? extends ServerChannel> serverChannelClass) {
        this.newEventLoopGroup = newEventLoopGroup;
        this.channelClass = channelClass;
        this.serverChannelClass = serverChannelClass;
    }

    @BeforeAll
    void startEventLoop() {
        group = newEventLoopGroup.get();
    }

    @AfterAll
    void stopEventLoop() throws Exception {
        assertThat(group.shutdownGracefully(0, AWAIT_SECONDS, SECONDS).await(2 * AWAIT_SECONDS, SECONDS)).isTrue();
    }

    @BeforeEach
    void openSockets() {
        sockets = new TlsSockets(group, channelClass, serverChannelClass, AWAIT);
    }

    @AfterEach
    void closeSockets() throws Exception {
        sockets.close();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Tests
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void shutdownOutputSendsCloseNotifyBeforeFin(SslProvider provider, String protocol) throws Exception {
        Peer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler());
        Channel peerChannel = peer.awaitHandshake();

        // A response the peer sends before our half-close: every engine can do that.
        writeString(peerChannel, "response-1").get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes("response-1".length(), AWAIT);

        // Written without waiting, then the half-close: all of it must precede our close_notify.
        byte[] request = payload(256 * 1024);
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(request));
        Future<TlsCloseEvent> shutdown = client.handler.shutdownOutput();

        // On the wire, as the peer sees it: all the data, then close_notify, then FIN.
        peer.rec.awaitEvent(ChannelInputShutdownEvent.class, AWAIT);
        assertThat(peer.rec.receivedBytes()).isEqualTo(request);
        List<Object> peerTimeline = peer.rec.timeline();
        int closeNotify = indexOf(peerTimeline, SocketClosureTest::isSuccessfulSslClose);
        int fin = indexOf(peerTimeline, ChannelInputShutdownEvent.class::isInstance);
        assertThat(closeNotify).as("close_notify in %s", peerTimeline).isNotNegative();
        assertThat(fin).as("close_notify before FIN in %s", peerTimeline).isGreaterThan(closeNotify);
        assertThat(bytesReadBefore(peerTimeline, closeNotify)).isEqualTo(request.length);

        // The engine table of the SPEC: only JDK TLSv1.3 neither replies by itself nor stops our output.
        SslHandler peerSsl = peerChannel.pipeline().get(SslHandler.class);
        boolean trueHalfClose = provider == SslProvider.JDK && Tls.TLS_1_3.equals(protocol);
        assertThat(onEventLoop(peerChannel, () -> peerSsl.engine().isOutboundDone()))
                .as("the peer's engine replied close_notify by itself").isEqualTo(!trueHalfClose);
        byte[] lateResponse = payload(64 * 1024);
        if (trueHalfClose) {
            // Our SHUT_WR keeps reading: the peer still sends, after our FIN.
            peerChannel.writeAndFlush(Unpooled.wrappedBuffer(lateResponse)).get(AWAIT_SECONDS, SECONDS);
        }
        peerSsl.closeOutbound().get(AWAIT_SECONDS, SECONDS); // no-op where the engine already replied

        TlsCloseEvent event = shutdown.get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
        assertThat(event.cause()).isNull();
        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        byte[] expected = trueHalfClose
                ? concat("response-1".getBytes(StandardCharsets.US_ASCII), lateResponse)
                : "response-1".getBytes(StandardCharsets.US_ASCII);
        assertThat(client.rec.receivedBytes()).isEqualTo(expected);
        assertOneEventBeforeInactive(client);
        assertThat(client.handler.closeFuture().getNow()).isSameAs(event);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void shutdownOutputKeepsReadingUntilPeerCloseNotify(SslProvider provider, String protocol) throws Exception {
        byte[] response = payload(256 * 1024);
        CompletableFuture<byte[]> raw = new CompletableFuture<>();
        JdkPeer peer = startJdkPeer(protocol, (plain, ssl, release) -> {
            sendPing(ssl);
            // Everything we send after the ping, read raw (the peer's TLS never sees our close_notify), up to our FIN.
            raw.complete(plain.getInputStream().readAllBytes());
            // A peer that still answers after our half-close, then sends its close_notify and FIN.
            ssl.getOutputStream().write(response);
            ssl.getOutputStream().flush();
            ssl.shutdownOutput();
            plain.shutdownOutput();
            awaitRelease(release);
        });
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler());
        client.rec.awaitBytes(PING.length(), AWAIT);

        Future<TlsCloseEvent> shutdown = client.handler.shutdownOutput();

        // On the wire: exactly one record, our close_notify, then FIN.
        List<TlsRecords.Record> records = TlsRecords.parse(raw.get(AWAIT_SECONDS, SECONDS));
        assertThat(records).hasSize(1);
        if (Tls.TLS_1_2.equals(protocol)) {
            assertThat(records.get(0).isAlert()).as("%s", records).isTrue();
        }
        TlsCloseEvent event = shutdown.get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        byte[] received = client.rec.receivedBytes();
        assertThat(received.length).as("bytes received").isEqualTo(PING.length() + response.length);
        assertThat(Arrays.copyOfRange(received, PING.length(), received.length)).isEqualTo(response);
        List<Object> timeline = client.rec.timeline();
        assertThat(bytesReadBefore(timeline, timeline.indexOf(event))).as("the whole response before the event")
                .isEqualTo(PING.length() + response.length);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

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
        peer.rec.awaitCondition(r -> indexOf(r.timeline(), SocketClosureTest::isSuccessfulSslClose) >= 0, AWAIT,
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

        client.channel.close().get(AWAIT_SECONDS, SECONDS);

        TlsCloseEvent event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).isLessThan(SLACK);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.isInsideRecord()).isFalse();
        assertThat(peer.wire.deafBytes.get()).as("our close_notify reached the peer's socket").isPositive();
        assertThat(indexOf(peer.rec.timeline(), SocketClosureTest::isSuccessfulSslClose)).isNegative();
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

        client.channel.close().get(AWAIT_SECONDS, SECONDS);

        TlsCloseEvent event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).isLessThan(SLACK);
        assertThat(event.cause()).isInstanceOf(TlsTruncationException.class);
        peer.done.get(AWAIT_SECONDS, SECONDS);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).as("a reset is an outcome, not an exception").isEmpty();
    }

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
        ChannelFuture closed = client.channel.close();

        closed.get(AWAIT_SECONDS, SECONDS);
        assertThat(closed.isSuccess()).isTrue();
        TlsCloseEvent event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).as("no wait for the read timeout").isLessThan(SLACK);
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
        JdkPeer peer = startJdkPeer(protocol, (plain, ssl, release) -> {
            sendPing(ssl);
            // Our close_notify arrives (read raw, below TLS: the peer's TLS never sees it) ...
            if (plain.getInputStream().read() < 0) {
                throw new IOException("EOF before our close_notify");
            }
            // ... and the peer goes on sending application data, never its close_notify.
            ssl.getOutputStream().write(late);
            ssl.getOutputStream().flush();
            awaitRelease(release);
        });
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(SHORT_TIMEOUT).build());
        client.rec.awaitBytes(PING.length(), AWAIT);

        client.channel.close().get(AWAIT_SECONDS, SECONDS);

        TlsCloseEvent event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.discardedBytes()).isEqualTo(late.length);
        assertThat(event.elapsed()).isGreaterThanOrEqualTo(SHORT_TIMEOUT).isLessThan(SHORT_TIMEOUT.plus(SLACK));
        assertThat(client.rec.receivedString()).isEqualTo(PING);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
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

        long start = System.nanoTime();
        how.begin().apply(client).get(AWAIT_SECONDS, SECONDS); // close()'s promise, shutdownOutput()'s future
        Duration wallClock = Duration.ofNanos(System.nanoTime() - start);

        TlsCloseEvent event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, how.mode());
        assertThat(event.cause()).isInstanceOf(TimeoutException.class);
        assertThat(event.elapsed()).isGreaterThanOrEqualTo(SHORT_TIMEOUT).isLessThan(SHORT_TIMEOUT.plus(SLACK));
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

    // ------------------------------------------------------------------------------------------------------------
    // Our side
    // ------------------------------------------------------------------------------------------------------------

    /** Connects our side, and waits for its handshake. */
    private Client connect(SslProvider provider, String protocol, SocketAddress address,
                           GracefulTlsCloseHandler handler) throws Exception {
        return sockets.connect(Tls.clientContext(provider, protocol), address, handler, new RecordingHandler());
    }

    // ------------------------------------------------------------------------------------------------------------
    // Netty peer
    // ------------------------------------------------------------------------------------------------------------

    /** A Netty server for one connection: {@link Wire}, SslHandler, optionally a GracefulTlsCloseHandler, recorder. */
    private Peer startNettyPeer(SslProvider provider, String protocol, GracefulTlsCloseHandler peerHandler)
            throws Exception {
        return sockets.listen(Tls.serverContext(provider, protocol), peerHandler, new RecordingHandler(), null);
    }

    // ------------------------------------------------------------------------------------------------------------
    // JDK SSLSocket peer
    // ------------------------------------------------------------------------------------------------------------

    /** What a {@link JdkPeer} does after its handshake, on its own thread. */
    @FunctionalInterface
    private interface PeerScript {
        void run(Socket plain, SSLSocket ssl, CountDownLatch release) throws Exception;
    }

    /** A JDK {@code SSLSocket} server, layered over a plain socket that the script can use below TLS. */
    private static final class JdkPeer implements AutoCloseable {
        final ServerSocket server;
        final CountDownLatch release = new CountDownLatch(1);
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final Thread thread;
        volatile Socket plain;

        JdkPeer(String protocol, PeerScript script) throws Exception {
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(TestCertificates.serverKeyManagerFactory().getKeyManagers(), null, null);
            server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
            thread = new Thread(() -> {
                try (Socket plain = server.accept()) {
                    this.plain = plain;
                    SSLSocket ssl = (SSLSocket) context.getSocketFactory()
                            .createSocket(plain, TestCertificates.HOSTNAME, plain.getPort(), false);
                    ssl.setUseClientMode(false);
                    ssl.setEnabledProtocols(new String[] {protocol});
                    ssl.startHandshake();
                    script.run(plain, ssl, release);
                    done.complete(null);
                } catch (Throwable t) {
                    done.completeExceptionally(t);
                }
            }, "jdk-peer");
            thread.setDaemon(true);
            thread.start();
        }

        SocketAddress address() {
            return server.getLocalSocketAddress();
        }

        @Override
        public void close() throws Exception {
            release.countDown();
            server.close();
            Socket s = plain;
            if (s != null) {
                s.close();
            }
            thread.join(TimeUnit.SECONDS.toMillis(AWAIT_SECONDS));
            assertThat(thread.isAlive()).as("JDK peer thread ended").isFalse();
        }
    }

    private JdkPeer startJdkPeer(String protocol, PeerScript script) throws Exception {
        JdkPeer peer = new JdkPeer(protocol, script);
        sockets.closeAfter(peer);
        return peer;
    }

    private static final String PING = "ping";

    /**
     * Sends one message to us, so that the handshake's tail (TLS 1.3 session tickets, sent by a JDK server after
     * its handshake) is behind us before the test goes on.
     */
    private static void sendPing(SSLSocket ssl) throws IOException {
        ssl.getOutputStream().write(PING.getBytes(StandardCharsets.US_ASCII));
        ssl.getOutputStream().flush();
    }

    /** A silent peer's thread parks here until the test is over; the test itself never sleeps. */
    private static void awaitRelease(CountDownLatch release) throws InterruptedException {
        release.await(30, SECONDS);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    /** One message from the peer to us, so that the handshake's tail (TLS 1.3 tickets) is behind us. */
    private static void exchange(Channel peerChannel, Client client) throws Exception {
        writeString(peerChannel, PING).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(PING.length(), AWAIT);
    }

    private static ChannelFuture writeString(Channel ch, String s) {
        return ch.writeAndFlush(Unpooled.copiedBuffer(s, StandardCharsets.US_ASCII));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static <T> T onEventLoop(Channel ch, Callable<T> task) throws Exception {
        return TlsSockets.onEventLoop(ch, task, AWAIT);
    }

    private static boolean isSuccessfulSslClose(Object o) {
        return o instanceof SslCloseCompletionEvent && ((SslCloseCompletionEvent) o).isSuccess();
    }

    private static int indexOf(List<Object> timeline, Predicate<Object> p) {
        for (int i = 0; i < timeline.size(); i++) {
            if (p.test(timeline.get(i))) {
                return i;
            }
        }
        return -1;
    }

    /** Application bytes recorded in {@code timeline} before index {@code end}. */
    private static long bytesReadBefore(List<Object> timeline, int end) {
        long n = 0;
        for (Object o : timeline.subList(0, end)) {
            if (o instanceof RecordingHandler.Read) {
                n += ((RecordingHandler.Read) o).bytes().length;
            }
        }
        return n;
    }

    private static void assertEvent(TlsCloseEvent event, TlsCloseStatus status, TlsCloseInitiator initiator,
                                    TlsCloseMode mode) {
        assertThat(event.status()).as("status of %s", event).isEqualTo(status);
        assertThat(event.initiator()).as("initiator of %s", event).isEqualTo(initiator);
        assertThat(event.mode()).as("mode of %s", event).isEqualTo(mode);
    }

    private static TlsTruncationException truncation(TlsCloseEvent event) {
        assertThat(event.cause()).as("cause of %s", event).isInstanceOf(TlsTruncationException.class);
        return (TlsTruncationException) event.cause();
    }

    /** Exactly one TlsCloseEvent, and it came before channelInactive. */
    private static void assertOneEventBeforeInactive(Client client) throws InterruptedException {
        client.rec.awaitInactive(AWAIT);
        List<Object> events = client.rec.events();
        assertThat(client.rec.eventsOfType(TlsCloseEvent.class)).as("%s", events).hasSize(1);
        int event = indexOf(events, TlsCloseEvent.class::isInstance);
        int inactive = events.indexOf(RecordingHandler.Marker.CHANNEL_INACTIVE);
        assertThat(event).as("TlsCloseEvent before channelInactive in %s", events).isLessThan(inactive);
    }
}
