package io.github.gracefultls;

import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsRecords;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static io.github.gracefultls.testing.TlsSockets.payload;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * SPEC operation 4, {@code shutdownOutput()}, over real sockets: our close_notify, then FIN, after every byte written;
 * then we keep reading until the peer's close_notify.
 */
class ShutdownOutputSocketTest extends SocketClosureTestBase {

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
        int closeNotify = indexOf(peerTimeline, SocketClosureTestBase::isSuccessfulSslClose);
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
}
