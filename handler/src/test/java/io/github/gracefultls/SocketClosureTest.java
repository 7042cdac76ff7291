package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsRecords;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Predicate;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Closures over real loopback TCP connections, for what {@code EmbeddedChannel} cannot show: TCP half-close (FIN),
 * reset (RST), and the order of {@code close_notify} and FIN on the wire. Re-run per transport by small subclasses,
 * like Netty's {@code SocketHalfClosedTest}.
 *
 * <p>"Our side" is a client channel with {@code SslHandler}, {@link GracefulTlsCloseHandler} and a
 * {@link RecordingHandler}. The peer is a Netty server channel whose first handler, a {@link Gate}, acts below its
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

    /** How a subclass creates event loops and socket channels. */
    protected interface Transport {
        EventLoopGroup newEventLoopGroup();

        Class<? extends ServerChannel> serverChannelClass();

        Class<? extends Channel> channelClass();
    }

    protected abstract Transport transport();

    private EventLoopGroup group;
    /** Closed after each test, last added first. */
    private final Deque<AutoCloseable> resources = new ArrayDeque<>();

    @BeforeAll
    void startEventLoop() {
        group = transport().newEventLoopGroup();
    }

    @AfterAll
    void stopEventLoop() throws Exception {
        assertThat(group.shutdownGracefully(0, AWAIT_SECONDS, SECONDS).await(2 * AWAIT_SECONDS, SECONDS)).isTrue();
    }

    @AfterEach
    void closeResources() throws Exception {
        Exception failure = null;
        while (!resources.isEmpty()) {
            try {
                resources.pop().close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Tests
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void shutdownOutputSendsCloseNotifyBeforeFin(SslProvider provider, String protocol) throws Exception {
        NettyPeer peer = startNettyPeer(provider, protocol, null);
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

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerFinWithoutCloseNotifyIsTruncated(SslProvider provider, String protocol) throws Exception {
        NettyPeer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler());
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);

        ((DuplexChannel) peerChannel).shutdownOutput().get(AWAIT_SECONDS, SECONDS); // FIN, no close_notify

        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        TlsCloseEvent event = client.rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER, null);
        assertThat(event.elapsed()).isEqualTo(Duration.ZERO);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.isInsideRecord()).isFalse();
        assertThat(cause.undecodedBytes()).isZero();
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
        // We still said goodbye: the peer got our close_notify.
        peer.rec.awaitCondition(r -> indexOf(r.timeline(), SocketClosureTest::isSuccessfulSslClose) >= 0, AWAIT,
                "the peer's SslCloseCompletionEvent.SUCCESS");
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerFinInsideRecordIsTruncatedInsideRecord(SslProvider provider, String protocol) throws Exception {
        int cutAt = 10; // more than a record header, less than the record
        NettyPeer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler());
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        int receivedBefore = client.rec.receivedBytes().length;

        onEventLoop(peerChannel, () -> peer.gate.truncateNextWriteTo = cutAt);
        writeString(peerChannel, "x".repeat(100)).get(AWAIT_SECONDS, SECONDS); // first 10 bytes of it, then FIN

        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        TlsCloseEvent event = client.rec.awaitEvent(TlsCloseEvent.class, AWAIT);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER, null);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.isInsideRecord()).as("%s", cause).isTrue();
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(cutAt);
        assertThat(client.rec.receivedBytes()).hasSize(receivedBefore);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    /** Without ALLOW_HALF_CLOSURE the FIN closes the channel: the cut record is still counted. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerFinInsideRecordWithoutHalfClosureIsTruncatedInsideRecord(SslProvider provider, String protocol)
            throws Exception {
        int cutAt = 12;
        NettyPeer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler(), false);
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);

        onEventLoop(peerChannel, () -> peer.gate.truncateNextWriteTo = cutAt);
        writeString(peerChannel, "x".repeat(100)).get(AWAIT_SECONDS, SECONDS); // first 12 bytes of it, then FIN

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
        NettyPeer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT).build());
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);
        // The peer never lets its TLS see our close_notify: it answers it with a bare FIN.
        onEventLoop(peerChannel, () -> peer.gate.deafThen(ctx -> ((DuplexChannel) ctx.channel()).shutdownOutput()));

        client.channel.close().get(AWAIT_SECONDS, SECONDS);

        TlsCloseEvent event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.elapsed()).isLessThan(SLACK);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.isInsideRecord()).isFalse();
        assertThat(peer.gate.deafBytes.get()).as("our close_notify reached the peer's socket").isPositive();
        assertThat(indexOf(peer.rec.timeline(), SocketClosureTest::isSuccessfulSslClose)).isNegative();
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void peerResetWhileIdleIsTruncated(SslProvider provider, String protocol) throws Exception {
        NettyPeer peer = startNettyPeer(provider, protocol, null);
        Client client = connect(provider, protocol, peer.address(), new GracefulTlsCloseHandler());
        Channel peerChannel = peer.awaitHandshake();
        exchange(peerChannel, client);

        // RST: SO_LINGER 0, and a close below the peer's SslHandler, so no close_notify.
        onEventLoop(peerChannel, () -> {
            peerChannel.config().setOption(ChannelOption.SO_LINGER, 0);
            return peer.gate.ctx.close();
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
        NettyPeer peer = startNettyPeer(provider, protocol, new GracefulTlsCloseHandler());
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

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void silentPeerTimesOut(SslProvider provider, String protocol) throws Exception {
        JdkPeer peer = startJdkPeer(protocol, (plain, ssl, release) -> {
            sendPing(ssl);
            awaitRelease(release);
        });
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(SHORT_TIMEOUT).build());
        client.rec.awaitBytes(PING.length(), AWAIT);

        long start = System.nanoTime();
        client.channel.close().get(AWAIT_SECONDS, SECONDS);
        Duration wallClock = Duration.ofNanos(System.nanoTime() - start);

        TlsCloseEvent event = client.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        assertThat(event.cause()).isInstanceOf(TimeoutException.class);
        assertThat(event.elapsed()).isGreaterThanOrEqualTo(SHORT_TIMEOUT).isLessThan(SHORT_TIMEOUT.plus(SLACK));
        assertThat(wallClock).isGreaterThanOrEqualTo(SHORT_TIMEOUT);
        assertThat(client.channel.isOpen()).isFalse();
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void shutdownOutputTimesOutAgainstSilentPeer(SslProvider provider, String protocol) throws Exception {
        JdkPeer peer = startJdkPeer(protocol, (plain, ssl, release) -> {
            sendPing(ssl);
            awaitRelease(release);
        });
        Client client = connect(provider, protocol, peer.address(),
                GracefulTlsCloseHandler.builder().halfCloseTimeout(SHORT_TIMEOUT).build());
        client.rec.awaitBytes(PING.length(), AWAIT);

        TlsCloseEvent event = GracefulTlsCloseHandler.shutdownOutput(client.channel).get(AWAIT_SECONDS, SECONDS);

        assertEvent(event, TlsCloseStatus.TIMED_OUT, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_WR);
        assertThat(event.cause()).isInstanceOf(TimeoutException.class);
        assertThat(event.elapsed()).isGreaterThanOrEqualTo(SHORT_TIMEOUT).isLessThan(SHORT_TIMEOUT.plus(SLACK));
        client.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertOneEventBeforeInactive(client);
        assertThat(client.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void byeShutRdwrHandsTransportBackForPlaintext(SslProvider provider, String protocol) throws Exception {
        NettyPeer peer = startNettyPeer(provider, protocol,
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

    private static final class Client {
        final Channel channel;
        final GracefulTlsCloseHandler handler;
        final RecordingHandler rec;

        Client(Channel channel, GracefulTlsCloseHandler handler, RecordingHandler rec) {
            this.channel = channel;
            this.handler = handler;
            this.rec = rec;
        }
    }

    /** Connects our side, and waits for its handshake. */
    private Client connect(SslProvider provider, String protocol, SocketAddress address,
                           GracefulTlsCloseHandler handler) throws Exception {
        return connect(provider, protocol, address, handler, true);
    }

    private Client connect(SslProvider provider, String protocol, SocketAddress address,
                           GracefulTlsCloseHandler handler, boolean halfClosure) throws Exception {
        RecordingHandler rec = new RecordingHandler();
        ChannelFuture connect = new Bootstrap()
                .group(group)
                .channel(transport().channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, halfClosure)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast("ssl", Tls.clientContext(provider, protocol).newHandler(ch.alloc()));
                        ch.pipeline().addLast("tls-close", handler);
                        ch.pipeline().addLast("rec", rec);
                    }
                })
                .connect(address);
        Channel channel = connect.channel();
        resources.push(() -> forceClose(channel));
        connect.get(AWAIT_SECONDS, SECONDS);
        channel.pipeline().get(SslHandler.class).handshakeFuture().get(AWAIT_SECONDS, SECONDS);
        return new Client(channel, handler, rec);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Netty peer
    // ------------------------------------------------------------------------------------------------------------

    /** A Netty server accepting one connection: gate, SslHandler, optionally a GracefulTlsCloseHandler, recorder. */
    private final class NettyPeer {
        final Channel server;
        final CompletableFuture<Channel> accepted;
        final Gate gate;
        final RecordingHandler rec;

        NettyPeer(Channel server, CompletableFuture<Channel> accepted, Gate gate, RecordingHandler rec) {
            this.server = server;
            this.accepted = accepted;
            this.gate = gate;
            this.rec = rec;
        }

        SocketAddress address() {
            return server.localAddress();
        }

        Channel awaitHandshake() throws Exception {
            Channel ch = accepted.get(AWAIT_SECONDS, SECONDS);
            ch.pipeline().get(SslHandler.class).handshakeFuture().get(AWAIT_SECONDS, SECONDS);
            return ch;
        }
    }

    private NettyPeer startNettyPeer(SslProvider provider, String protocol, GracefulTlsCloseHandler peerHandler)
            throws Exception {
        Gate gate = new Gate();
        RecordingHandler rec = new RecordingHandler();
        CompletableFuture<Channel> accepted = new CompletableFuture<>();
        ChannelFuture bind = new ServerBootstrap()
                .group(group)
                .channel(transport().serverChannelClass())
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (accepted.isDone()) {
                            ch.close();
                            return;
                        }
                        resources.push(() -> forceClose(ch));
                        ch.pipeline().addLast("gate", gate);
                        ch.pipeline().addLast("ssl", Tls.serverContext(provider, protocol).newHandler(ch.alloc()));
                        if (peerHandler != null) {
                            ch.pipeline().addLast("tls-close", peerHandler);
                        }
                        ch.pipeline().addLast("rec", rec);
                        accepted.complete(ch);
                    }
                })
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        Channel server = bind.channel();
        resources.push(() -> server.close().await(AWAIT_SECONDS, SECONDS));
        bind.get(AWAIT_SECONDS, SECONDS);
        return new NettyPeer(server, accepted, gate, rec);
    }

    /**
     * The peer's first handler, next to the transport, where its TLS does not see what happens: it can go deaf
     * (release inbound bytes unread, then act), and cut its next outbound buffer short and send a FIN after it.
     * Its {@link #ctx} closes below the {@code SslHandler}, without {@code close_notify}. Used on the event loop.
     */
    private static final class Gate extends ChannelDuplexHandler {
        volatile ChannelHandlerContext ctx;
        final AtomicLong deafBytes = new AtomicLong();
        private boolean deaf;
        private Consumer<ChannelHandlerContext> onFirstDeafRead;
        /** Forward only this many bytes of the next non-trivial outbound buffer, then FIN; -1: off. */
        int truncateNextWriteTo = -1;

        /** From now on, releases inbound bytes unread; runs {@code action} at the first of them. */
        Gate deafThen(Consumer<ChannelHandlerContext> action) {
            deaf = true;
            onFirstDeafRead = action;
            return this;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!deaf) {
                ctx.fireChannelRead(msg);
                return;
            }
            if (msg instanceof ByteBuf) {
                deafBytes.addAndGet(((ByteBuf) msg).readableBytes());
            }
            ReferenceCountUtil.release(msg);
            Consumer<ChannelHandlerContext> action = onFirstDeafRead;
            onFirstDeafRead = null;
            if (action != null) {
                action.accept(ctx);
            }
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            int cut = truncateNextWriteTo;
            if (cut < 0 || !(msg instanceof ByteBuf) || ((ByteBuf) msg).readableBytes() <= cut) {
                ctx.write(msg, promise);
                return;
            }
            truncateNextWriteTo = -1;
            ByteBuf buf = (ByteBuf) msg;
            ByteBuf part = buf.retainedSlice(buf.readerIndex(), cut);
            buf.release();
            ChannelPromise written = ctx.newPromise();
            written.addListener(f -> {
                ((DuplexChannel) ctx.channel()).shutdownOutput();
                if (f.isSuccess()) {
                    promise.trySuccess();
                } else {
                    promise.tryFailure(f.cause());
                }
            });
            ctx.write(part, written);
        }
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
        resources.push(peer);
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

    private static byte[] payload(int length) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) (i % 251);
        }
        return bytes;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static <T> T onEventLoop(Channel ch, Callable<T> task) throws Exception {
        return ch.eventLoop().submit(task).get(AWAIT_SECONDS, SECONDS);
    }

    /** Closes at the head of the pipeline, past every handler: no close_notify, no wait. For clean-up. */
    private static void forceClose(Channel ch) throws InterruptedException {
        ChannelHandlerContext first = ch.pipeline().firstContext();
        if (first != null) {
            first.close();
        } else {
            ch.close();
        }
        ch.closeFuture().await(AWAIT_SECONDS, SECONDS);
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
