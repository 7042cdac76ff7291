package io.github.gracefultls;

import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.Transport;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.time.Duration;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link TlsCloseRelay}: a truncation, a reset or a timeout on one side never reaches the other side as a clean
 * {@code close_notify} or FIN: it becomes an abort.
 */
class TlsCloseRelayTruncationTest extends TlsCloseRelayTestBase {

    /** A reset is no end of stream: the client must see a truncation, never the frontend's close_notify. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cells")
    void plainUpstreamResetMidResponseIsATruncationForTheClient(SslProvider provider, String protocol)
            throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 7)));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);
        byte[] part = payload(256 * 1024, 8);
        up.writeAndFlush(Unpooled.wrappedBuffer(part)).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(part.length, AWAIT); // the part is through, the reset comes "mid-response"

        reset(up);

        TlsCloseEvent clientEvent = client.awaitEvent(AWAIT);
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(clientEvent.status()).as("the client's view of an upstream reset: %s; relay %s", clientEvent,
                outcome).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(outcome.frontendCause()).as("%s", outcome).hasMessageContaining("the backend ended TRUNCATED");
        assertSameBytes(client.rec.receivedBytes(), part, "what the client got before the truncation");
        assertBothClosed(proxy);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cells")
    void tlsUpstreamDroppingTcpWithoutCloseNotifyIsATruncationForTheClient(SslProvider provider, String protocol)
            throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.TLS, provider, protocol, GracefulTlsCloseHandler::new);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 9)));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);
        byte[] part = payload(256 * 1024, 10);
        up.writeAndFlush(Unpooled.wrappedBuffer(part)).get(AWAIT_SECONDS, SECONDS);
        client.rec.awaitBytes(part.length, AWAIT);

        closeBelowTls(up); // FIN without close_notify: a truncation attack, as the backend sees it

        TlsCloseEvent clientEvent = client.awaitEvent(AWAIT);
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(clientEvent.status()).as("client %s; relay %s", clientEvent, outcome)
                .isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertEvent(outcome.backendEvent(), TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER);
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertSameBytes(client.rec.receivedBytes(), part, "what the client got before the truncation");
        assertBothClosed(proxy);
    }

    @ParameterizedTest(name = "{0} {1} {2} upstream")
    @MethodSource("cellsAndUpstreams")
    void clientTruncationAbortsTheUpstream(SslProvider provider, String protocol, Upstream kind) throws Exception {
        UpstreamServer upstream = startUpstream(kind, provider, protocol, GracefulTlsCloseHandler::new);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        byte[] part = payload(64 * 1024, 11);
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(part));
        upstream.awaitAccepted();
        upstream.rec.awaitBytes(part.length, AWAIT);

        closeBelowTls(client.channel); // FIN without close_notify

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertEvent(outcome.frontendEvent(), TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        if (kind == Upstream.TLS) {
            TlsCloseEvent upstreamEvent = upstream.awaitEvent();
            assertThat(upstreamEvent.status()).as("%s", upstreamEvent).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(upstreamEvent.cause()).as("%s", upstreamEvent).isInstanceOf(TlsTruncationException.class);
            assertThat(upstreamEvent.cause().getCause()).as("a reset, not a FIN: %s", upstreamEvent)
                    .isInstanceOf(IOException.class);
        } else {
            assertResetSeen(upstream.rec, "the upstream");
        }
        assertSameBytes(upstream.rec.receivedBytes(), part, "what the upstream got before the abort");
        assertBothClosed(proxy);
    }

    /**
     * A side that marks messages ({@link GracefulTlsCloseHandler#messageStarted(Channel)}, as a protocol decoder on the
     * relay would) shows its state in the outcome: the client cut the request it was sending.
     */
    @Test
    void theOutcomeSaysTheClientsTruncationCutAMessage() throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.TLS, SslProvider.JDK, Tls.TLS_1_3,
                GracefulTlsCloseHandler::new);
        Proxy proxy = startProxy(SslProvider.JDK, Tls.TLS_1_3, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(SslProvider.JDK, Tls.TLS_1_3, proxy, new GracefulTlsCloseHandler());
        byte[] part = payload(64 * 1024, 13);
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(part));
        upstream.awaitAccepted();
        upstream.rec.awaitBytes(part.length, AWAIT);
        TlsCloseRelay relay = proxy.relay();
        assertThat(onEventLoop(relay.frontend(), () -> GracefulTlsCloseHandler.messageStarted(relay.frontend())))
                .as("the frontend has a handler to mark").isTrue();
        onEventLoop(relay.backend(), () -> GracefulTlsCloseHandler.messageCompleted(relay.backend()));

        closeBelowTls(client.channel); // FIN without close_notify, the request under way

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEvent().messageState()).as("%s", outcome).isEqualTo(MessageState.IN_MESSAGE);
        assertThat(outcome.frontendEvent().isMessageCut()).as("%s", outcome).isTrue();
        assertThat(outcome.toString()).as("%s", outcome)
                .startsWith("TlsCloseRelay.Outcome(frontend TRUNCATED TlsCloseEvent(TRUNCATED, PEER, -, ")
                .contains(", in message, TlsTruncationException: ");
        // The backend, aborted (FAILED), had marked its last message complete.
        assertThat(outcome.backendEvent().messageState()).as("%s", outcome).isEqualTo(MessageState.BETWEEN_MESSAGES);
        assertThat(outcome.backendEvent().isMessageCut()).as("%s", outcome).isFalse();
        assertThat(outcome.toString()).as("%s", outcome).contains(", backend ABORTED TlsCloseEvent(FAILED, LOCAL, -, ")
                .contains(", between messages, IOException: relay aborted: the frontend ended TRUNCATED))");
        assertBothClosed(proxy);
    }

    /**
     * The upstream's handshake fails (its server speaks TLS 1.2 only, the backend asks for 1.3): a client that waits
     * for the server to speak first must not wait for ever. The upstream answers with an alert and a FIN, which a
     * half-closing TLS side without a session never reports as an end: the relay ends the backend at the failure,
     * and the client sees a truncation.
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(value = SslProvider.class, names = {"JDK", "OPENSSL"})
    void aFailedUpstreamHandshakeEndsTheClientsConnection(SslProvider provider) throws Exception {
        // The relay's side of it holds on every transport; what io_uring's client may miss is the reset itself, which
        // Netty 4.2.18's io_uring transport does not report when bytes before it are unread (here the TLS 1.3
        // session ticket; see docs/interop.md). Seen once in CI (OPENSSL), never on NIO or epoll.
        Assumptions.assumeTrue(transport != Transport.IO_URING,
                "io_uring: a reset behind unread bytes is not reported (docs/interop.md)");
        UpstreamServer only12 = startUpstream(Upstream.TLS, provider, Tls.TLS_1_2, GracefulTlsCloseHandler::new);
        UpstreamServer asking13 = new UpstreamServer(Upstream.TLS, provider, Tls.TLS_1_3, only12.peer);
        Proxy proxy = startProxy(provider, Tls.TLS_1_3, asking13, GracefulTlsCloseHandler::new);
        Client client = connect(provider, Tls.TLS_1_3, proxy, new GracefulTlsCloseHandler());

        TlsCloseEvent clientEvent = client.rec.awaitEvent(TlsCloseEvent.class, AWAIT); // it never writes
        assertThat(clientEvent.status()).as("%s", clientEvent).isEqualTo(TlsCloseStatus.TRUNCATED);
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.FAILED);
        assertThat(outcome.backendCause()).as("%s", outcome).isInstanceOf(javax.net.ssl.SSLException.class);
        assertThat(outcome.backendEvent()).as("%s", outcome).isNull();
        assertBothClosed(proxy);
    }

    /** The frontend waits for the client's close_notify at most halfCloseTimeout; then both sides are aborted. */
    @Test
    void frontendHalfCloseTimeoutAbortsTheUpstream() throws Exception {
        SslProvider provider = SslProvider.JDK;
        String protocol = Tls.TLS_1_3; // its engine does not answer close_notify by itself
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream,
                () -> GracefulTlsCloseHandler.builder().halfCloseTimeout(Duration.ofMillis(200)).build());
        // A client that reads the response and the close_notify, but never answers nor closes.
        Client client = connect(provider, protocol, proxy,
                GracefulTlsCloseHandler.builder().peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 12)));
        Channel up = upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);
        respondAndEnd(Upstream.PLAIN, up, payload(1024, 13)); // done sending, and still listens

        assertEvent(client.awaitEvent(AWAIT), TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER);
        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TIMED_OUT);
        assertThat(outcome.frontendEvent().status()).isEqualTo(TlsCloseStatus.TIMED_OUT);
        assertThat(outcome.backendEnd()).as("its input had ended cleanly: %s", outcome)
                .isEqualTo(TlsCloseRelay.End.CLEAN);
        assertThat(outcome.isClean()).isFalse();
        assertResetSeen(upstream.rec, "the upstream, whose client never finished");
        assertBothClosed(proxy);
    }

    /** With {@link TlsCloseRelay.TruncationSignal#FIN}, a TLS upstream sees the client's truncation as a bare FIN. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cells")
    void finSignalEndsATlsUpstreamWithABareFin(SslProvider provider, String protocol) throws Exception {
        UpstreamServer upstream = startUpstream(Upstream.TLS, provider, protocol, GracefulTlsCloseHandler::new);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new,
                TlsCloseRelay.TruncationSignal.FIN, AWAIT);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        byte[] part = payload(64 * 1024, 15);
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(part));
        upstream.awaitAccepted();
        upstream.rec.awaitBytes(part.length, AWAIT);

        closeBelowTls(client.channel);

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(outcome.backendCause()).as("%s", outcome).hasMessageContaining("the frontend ended TRUNCATED");
        TlsCloseEvent upstreamEvent = upstream.awaitEvent();
        assertThat(upstreamEvent.status()).as("%s", upstreamEvent).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(upstreamEvent.cause()).as("%s", upstreamEvent).isInstanceOf(TlsTruncationException.class)
                .hasMessageContaining("(FIN)");
        assertSameBytes(upstream.rec.receivedBytes(), part, "what the upstream got before the FIN");
        assertBothClosed(proxy);
    }

    @Test
    void abortResetsBothSides() throws Exception {
        SslProvider provider = SslProvider.OPENSSL;
        String protocol = Tls.TLS_1_3;
        UpstreamServer upstream = startUpstream(Upstream.PLAIN, provider, protocol, null);
        Proxy proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new);
        Client client = connect(provider, protocol, proxy, new GracefulTlsCloseHandler());
        client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 14)));
        upstream.awaitAccepted();
        upstream.rec.awaitBytes(1024, AWAIT);

        proxy.relay().abort();

        TlsCloseRelay.Outcome outcome = proxy.awaitOutcome();
        assertThat(outcome.frontendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(outcome.backendEnd()).as("%s", outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(outcome.frontendEvent().status()).isEqualTo(TlsCloseStatus.FAILED);
        assertThat(client.awaitEvent(AWAIT).status()).isEqualTo(TlsCloseStatus.TRUNCATED);
        assertResetSeen(upstream.rec, "the upstream");
        assertBothClosed(proxy);
    }
}
