package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Transport;
import io.github.gracefultls.testing.Wire;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslProvider;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import java.io.IOException;
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
import java.util.function.Predicate;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Closures over real loopback TCP connections, for what {@code EmbeddedChannel} cannot show: TCP half-close (FIN),
 * reset (RST), and the order of {@code close_notify} and FIN on the wire; over every {@link Transport}. The tests are
 * split by the SPEC's operation they prove; this class has their peers and helpers.
 *
 * <p>"Our side" is a client channel with {@code SslHandler}, {@link GracefulTlsCloseHandler} and a
 * {@link RecordingHandler}. The peer is a Netty server channel whose first handler, a {@link Wire}, acts below its
 * {@code SslHandler} (FIN, RST, deafness, a cut record), or a JDK {@code SSLSocket} on its own thread. Every channel
 * has {@link ChannelOption#ALLOW_HALF_CLOSURE} on.
 */
abstract class SocketClosureTestBase extends SocketTestBase {

    /** Bound for every wait on an outcome that should come at once: far from any stall of a loaded machine. */
    static final long AWAIT_SECONDS = 30;
    static final Duration AWAIT = Duration.ofSeconds(AWAIT_SECONDS);
    /**
     * Allowed beyond a configured timeout, and the bound for "well before the timeout"; both besides the event loop's
     * lateness measured meanwhile ({@link io.github.gracefultls.testing.LoopLateness}).
     */
    static final Duration SLACK = Duration.ofSeconds(2);
    /** A timeout that is the expected outcome. */
    static final Duration SHORT_TIMEOUT = Duration.ofMillis(300);
    /** A timeout that must not be reached: an answering peer beats it however loaded the machine. */
    static final Duration LONG_TIMEOUT = Duration.ofSeconds(30);

    @Override
    int eventLoopThreads() {
        return 1;
    }

    @Override
    Duration await() {
        return AWAIT;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Our side
    // ------------------------------------------------------------------------------------------------------------

    /** Connects our side, and waits for its handshake. */
    Client connect(SslProvider provider, String protocol, SocketAddress address,
                           GracefulTlsCloseHandler handler) throws Exception {
        return sockets.connect(Tls.clientContext(provider, protocol), address, handler, new RecordingHandler());
    }

    // ------------------------------------------------------------------------------------------------------------
    // Netty peer
    // ------------------------------------------------------------------------------------------------------------

    /** A Netty server for one connection: {@link Wire}, SslHandler, optionally a GracefulTlsCloseHandler, recorder. */
    Peer startNettyPeer(SslProvider provider, String protocol, GracefulTlsCloseHandler peerHandler)
            throws Exception {
        return sockets.listen(Tls.serverContext(provider, protocol), peerHandler, new RecordingHandler(), null);
    }

    // ------------------------------------------------------------------------------------------------------------
    // JDK SSLSocket peer
    // ------------------------------------------------------------------------------------------------------------

    /** What a {@link JdkPeer} does after its handshake, on its own thread. */
    @FunctionalInterface
    interface PeerScript {
        void run(Socket plain, SSLSocket ssl, CountDownLatch release) throws Exception;
    }

    /** A JDK {@code SSLSocket} server, layered over a plain socket that the script can use below TLS. */
    static final class JdkPeer implements AutoCloseable {
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

    JdkPeer startJdkPeer(String protocol, PeerScript script) throws Exception {
        JdkPeer peer = new JdkPeer(protocol, script);
        sockets.closeAfter(peer);
        return peer;
    }

    static final String PING = "ping";

    /**
     * Sends one message to us, so that the handshake's tail (TLS 1.3 session tickets, sent by a JDK server after
     * its handshake) is behind us before the test goes on.
     */
    static void sendPing(SSLSocket ssl) throws IOException {
        ssl.getOutputStream().write(PING.getBytes(StandardCharsets.US_ASCII));
        ssl.getOutputStream().flush();
    }

    /** A silent peer's thread parks here until the test is over; the test itself never sleeps. */
    static void awaitRelease(CountDownLatch release) throws InterruptedException {
        release.await(30, SECONDS);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    /** One message from the peer to us, so that the handshake's tail (TLS 1.3 tickets) is behind us. */
    static void exchange(Channel peerChannel, Client client) throws Exception {
        writeString(peerChannel, PING).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(PING.length(), AWAIT);
    }

    static ChannelFuture writeString(Channel ch, String s) {
        return ch.writeAndFlush(Unpooled.copiedBuffer(s, StandardCharsets.US_ASCII));
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static <T> T onEventLoop(Channel ch, Callable<T> task) throws Exception {
        return TlsSockets.onEventLoop(ch, task, AWAIT);
    }

    static boolean isSuccessfulSslClose(Object o) {
        return o instanceof SslCloseCompletionEvent && ((SslCloseCompletionEvent) o).isSuccess();
    }

    static int indexOf(List<Object> timeline, Predicate<Object> p) {
        for (int i = 0; i < timeline.size(); i++) {
            if (p.test(timeline.get(i))) {
                return i;
            }
        }
        return -1;
    }

    /** Application bytes recorded in {@code timeline} before index {@code end}. */
    static long bytesReadBefore(List<Object> timeline, int end) {
        long n = 0;
        for (Object o : timeline.subList(0, end)) {
            if (o instanceof RecordingHandler.Read) {
                n += ((RecordingHandler.Read) o).bytes().length;
            }
        }
        return n;
    }

    static void assertEvent(TlsCloseEvent event, TlsCloseStatus status, TlsCloseInitiator initiator,
                                    TlsCloseMode mode) {
        assertThat(event.status()).as("status of %s", event).isEqualTo(status);
        assertThat(event.initiator()).as("initiator of %s", event).isEqualTo(initiator);
        assertThat(event.mode()).as("mode of %s", event).isEqualTo(mode);
    }

    static TlsTruncationException truncation(TlsCloseEvent event) {
        assertThat(event.cause()).as("cause of %s", event).isInstanceOf(TlsTruncationException.class);
        return (TlsTruncationException) event.cause();
    }

    /** Exactly one TlsCloseEvent, and it came before channelInactive. */
    static void assertOneEventBeforeInactive(Client client) throws InterruptedException {
        client.rec.awaitInactive(AWAIT);
        List<Object> events = client.rec.events();
        assertThat(client.rec.eventsOfType(TlsCloseEvent.class)).as("%s", events).hasSize(1);
        int event = indexOf(events, TlsCloseEvent.class::isInstance);
        int inactive = events.indexOf(RecordingHandler.Marker.CHANNEL_INACTIVE);
        assertThat(event).as("TlsCloseEvent before channelInactive in %s", events).isLessThan(inactive);
    }
}
