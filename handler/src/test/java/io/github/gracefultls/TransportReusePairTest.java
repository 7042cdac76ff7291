package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TlsPair.Side;
import io.github.gracefultls.testing.TlsRecords;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.IntFunction;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.ascii;
import static io.github.gracefultls.PairTestSupport.assertCleanPeerEvent;
import static io.github.gracefultls.PairTestSupport.assertCompletedWith;
import static io.github.gracefultls.PairTestSupport.assertEvent;
import static io.github.gracefultls.PairTestSupport.assertNoEvent;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.completions;
import static io.github.gracefultls.PairTestSupport.endOfRecords;
import static io.github.gracefultls.PairTestSupport.firstReadIndex;
import static io.github.gracefultls.PairTestSupport.isTrueHalfClose;
import static io.github.gracefultls.PairTestSupport.names;
import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static io.github.gracefultls.PairTestSupport.randomBytes;
import static io.github.gracefultls.TlsCloseInitiator.LOCAL;
import static io.github.gracefultls.TlsCloseMode.SHUT_RDWR;
import static io.github.gracefultls.TlsCloseMode.SHUT_WR;
import static io.github.gracefultls.TlsCloseStatus.CLOSE_NOTIFY_RECEIVED;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code bye(SHUT_RDWR)}, {@code bye(SHUT_WR)} and {@code shutdownOutput()} (on an {@code EmbeddedChannel}, not a
 * {@code DuplexChannel}): after a clean closure the {@code SslHandler}, the {@link GracefulTlsCloseHandler} and its
 * helpers leave the pipeline, the channel stays open, and bytes that followed the peer's close_notify reach the next
 * handler as plaintext.
 */
class TransportReusePairTest {

    private static final byte[] SERVER_PLAINTEXT = ascii("226 plaintext from the server after close_notify\r\n");
    private static final byte[] CLIENT_PLAINTEXT = ascii("PBSZ 0\r\n");
    private static final byte[] PAYLOAD = randomBytes(20_000, 7);

    // ---------------------------------------------------------------------------------------------------------
    // bye(SHUT_RDWR) against a peer with PeerClosePolicy.REUSE_TRANSPORT
    // ---------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrReusesTransportWithCloseNotifyAndPlaintextInOneBuffer(SslProvider provider, String protocol) {
        byeShutRdwrAgainstReusingPeer(provider, protocol, end -> new int[0]);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrReusesTransportWithPlaintextSplitAtTheRecordBoundary(SslProvider provider, String protocol) {
        byeShutRdwrAgainstReusingPeer(provider, protocol, end -> new int[] {end});
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrReusesTransportWithPlaintextSplitInsideThePlaintext(SslProvider provider, String protocol) {
        byeShutRdwrAgainstReusingPeer(provider, protocol, end -> new int[] {end + 5});
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrReusesTransportWithCloseNotifyRecordCutInTwo(SslProvider provider, String protocol) {
        byeShutRdwrAgainstReusingPeer(provider, protocol, end -> new int[] {end - 3});
    }

    private static void byeShutRdwrAgainstReusingPeer(SslProvider provider, String protocol,
                                                       IntFunction<int[]> splitsGivenEndOfRecords) {
        GracefulTlsCloseHandler server = GracefulTlsCloseHandler.builder()
                .peerClosePolicy(PeerClosePolicy.REUSE_TRANSPORT).build();
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), server).handshake()) {
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);
            AtomicInteger byeCompletions = completions(bye);
            Future<TlsCloseEvent> closeFuture = f.clientHandler().closeFuture();
            AtomicInteger closeFutureCompletions = completions(closeFuture);
            assertThat(bye.isDone()).isFalse();

            f.pair.forward(Side.CLIENT);

            // The peer replied and handed its transport back; it now writes plaintext.
            TlsCloseEvent peerEvent = onlyEvent(f.serverApp());
            assertCleanPeerEvent(peerEvent);
            assertOnlyApp(f.server());
            assertThat(f.server().isOpen()).isTrue();
            f.server().writeAndFlush(buf(f.server(), SERVER_PLAINTEXT));
            byte[] wire = f.pair.drainOutbound(Side.SERVER);
            int end = endOfRecords(wire);
            assertThat(Arrays.copyOfRange(wire, end, wire.length)).as("plaintext after the close_notify")
                    .isEqualTo(SERVER_PLAINTEXT);

            f.pair.advanceTimeBy(5, TimeUnit.MILLISECONDS);
            f.pair.deliver(Side.CLIENT, wire, splitsGivenEndOfRecords.apply(end));

            TlsCloseEvent event = onlyEvent(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(event.elapsed()).isEqualTo(Duration.ofMillis(5));
            assertThat(event.discardedBytes()).isZero();
            assertCompletedWith(bye, byeCompletions, event);
            assertCompletedWith(closeFuture, closeFutureCompletions, event);
            assertTransportHandedBack(f.client(), f.clientApp(), event, SERVER_PLAINTEXT);
            assertPlaintextBothWays(f);
        }
    }

    /** The peer is a bare SslHandler, driven by hand: its reply and plaintext arrive in one buffer. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrReusesTransportAgainstABareSslHandlerPeer(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), null).handshake()) {
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);

            f.pair.forward(Side.CLIENT);
            assertThat(f.pair.serverSsl().sslCloseFuture().isSuccess()).isTrue();
            if (isTrueHalfClose(provider, protocol)) {
                assertThat(f.pair.hasPendingOutbound(Side.SERVER)).as("JDK TLS 1.3 does not reply").isFalse();
                f.pair.serverSsl().closeOutbound();
            }
            byte[] reply = f.pair.drainOutbound(Side.SERVER);
            f.pair.deliver(Side.CLIENT, TlsRecords.concat(reply, SERVER_PLAINTEXT));

            TlsCloseEvent event = onlyEvent(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(bye.getNow()).isSameAs(event);
            assertTransportHandedBack(f.client(), f.clientApp(), event, SERVER_PLAINTEXT);

            f.client().writeAndFlush(buf(f.client(), CLIENT_PLAINTEXT));
            assertThat(f.pair.drainOutbound(Side.CLIENT)).isEqualTo(CLIENT_PLAINTEXT);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // bye(SHUT_WR) and shutdownOutput(): we keep reading until the peer's close_notify
    // ---------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutWrDeliversDataUntilThePeersCloseNotifyThenReusesTransport(SslProvider provider, String protocol) {
        halfCloseDeliversDataThenReusesTransport(provider, protocol, f -> f.clientHandler().bye(SHUT_WR));
    }

    /** An EmbeddedChannel is not a DuplexChannel: shutdownOutput() behaves as bye(SHUT_WR). */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void shutdownOutputOnAChannelThatIsNotDuplexBehavesAsByeShutWr(SslProvider provider, String protocol) {
        halfCloseDeliversDataThenReusesTransport(provider, protocol, f -> f.clientHandler().shutdownOutput());
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void staticShutdownOutputFindsTheHandlerInThePipeline(SslProvider provider, String protocol) {
        halfCloseDeliversDataThenReusesTransport(provider, protocol,
                f -> GracefulTlsCloseHandler.shutdownOutput(f.client()));
    }

    /**
     * The peer (HALF_CLOSE) has data in flight when our close_notify reaches it; a true half-close engine (JDK
     * TLS 1.3) also writes after receiving it, other engines can no longer write (they replied already). The data is
     * delivered, not discarded; then the peer's close_notify ends it cleanly and the transport is left for reuse.
     */
    private static void halfCloseDeliversDataThenReusesTransport(
            SslProvider provider, String protocol,
            Function<Fixture, Future<TlsCloseEvent>> halfClose) {
        GracefulTlsCloseHandler server = GracefulTlsCloseHandler.builder()
                .peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build();
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), server).handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD)); // in flight

            Future<TlsCloseEvent> bye = halfClose.apply(f);
            AtomicInteger byeCompletions = completions(bye);
            assertThat(bye.isDone()).isFalse();
            assertThat(f.client().runScheduledPendingTasks()).as("halfCloseTimeout ZERO: no timer").isEqualTo(-1);

            f.pair.forward(Side.CLIENT);
            assertCleanPeerEvent(onlyEvent(f.serverApp()));
            byte[] late = ascii("written after the peer's close_notify");
            ChannelFuture lateWrite = f.server().writeAndFlush(buf(f.server(), late));
            byte[] expected = PAYLOAD;
            if (isTrueHalfClose(provider, protocol)) {
                assertThat(lateWrite.isSuccess()).isTrue();
                expected = TlsRecords.concat(PAYLOAD, late);
                f.pair.forward(Side.SERVER); // data only: the peer has not closed yet
                assertThat(f.clientApp().receivedBytes()).isEqualTo(expected);
                assertNoEvent(f.clientApp());
                assertThat(bye.isDone()).isFalse();
            } else {
                assertThat(lateWrite.cause()).isInstanceOf(SslClosedEngineException.class);
            }
            assertThat(f.server().close().isSuccess()).as("the peer's close needs no wait").isTrue();
            f.pair.advanceTimeBy(2, TimeUnit.MILLISECONDS);

            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = onlyEvent(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_WR);
            assertThat(event.elapsed()).isEqualTo(Duration.ofMillis(2));
            assertThat(event.discardedBytes()).isZero();
            assertThat(f.clientApp().receivedBytes()).as("delivered, not discarded").isEqualTo(expected);
            assertCompletedWith(bye, byeCompletions, event);
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);
            assertThat(f.client().isOpen()).isTrue();
            assertOnlyApp(f.client());
            f.client().writeAndFlush(buf(f.client(), CLIENT_PLAINTEXT));
            assertThat(f.pair.drainOutbound(Side.CLIENT)).isEqualTo(CLIENT_PLAINTEXT);
        }
    }

    /** A bye(SHUT_RDWR) after a bye(SHUT_WR) waits for the same close_notify, and now discards what arrives. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrAfterByeShutWrWaitsForTheSameCloseNotify(SslProvider provider, String protocol) {
        byeShutRdwrAfterHalfCloseWaitsForTheSameCloseNotify(provider, protocol, f -> f.clientHandler().bye(SHUT_WR));
    }

    /** The SPEC's own case: a bye(SHUT_RDWR) after shutdownOutput() (here bye(SHUT_WR): not a DuplexChannel). */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrAfterShutdownOutputWaitsForTheSameCloseNotify(SslProvider provider, String protocol) {
        byeShutRdwrAfterHalfCloseWaitsForTheSameCloseNotify(provider, protocol, f -> f.clientHandler().shutdownOutput());
    }

    private static void byeShutRdwrAfterHalfCloseWaitsForTheSameCloseNotify(
            SslProvider provider, String protocol, Function<Fixture, Future<TlsCloseEvent>> halfClose) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD)); // in flight
            Future<TlsCloseEvent> wr = halfClose.apply(f);
            byte[] closeNotify = f.pair.drainOutbound(Side.CLIENT);
            Future<TlsCloseEvent> rdwr = f.clientHandler().bye(SHUT_RDWR);
            assertThat(f.pair.pendingOutboundBytes(Side.CLIENT)).as("a single close_notify").isZero();
            assertThat(f.client().runScheduledPendingTasks()).as("now the read timeout runs").isPositive();
            assertThat(wr.isDone()).isFalse();
            assertThat(rdwr.isDone()).isFalse();

            f.pair.deliver(Side.SERVER, closeNotify);
            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = onlyEvent(f.clientApp());
            assertThat(event.status()).isEqualTo(CLOSE_NOTIFY_RECEIVED);
            assertThat(event.initiator()).isEqualTo(LOCAL);
            assertThat(event.discardedBytes()).isEqualTo(PAYLOAD.length);
            assertThat(f.clientApp().receivedBytes()).isEmpty();
            assertThat(wr.isSuccess()).isTrue();
            assertThat(rdwr.isSuccess()).isTrue();
            assertThat(wr.getNow()).isSameAs(event);
            assertThat(rdwr.getNow()).isSameAs(event);
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);
            assertThat(f.client().isOpen()).isTrue();
            assertOnlyApp(f.client());
            assertThat(f.client().runScheduledPendingTasks()).as("read timer cancelled").isEqualTo(-1);
        }
    }

    // ---------------------------------------------------------------------------------------------------------

    /** Only the application handler is left: no SslHandler, GracefulTlsCloseHandler, closing guard, meter. */
    static void assertOnlyApp(EmbeddedChannel ch) {
        assertThat(names(ch)).as("pipeline").containsExactly("app");
        List<ChannelHandler> handlers = List.copyOf(ch.pipeline().toMap().values());
        assertThat(handlers).as("pipeline").hasSize(1).allMatch(h -> h instanceof RecordingHandler);
    }

    private static void assertTransportHandedBack(EmbeddedChannel ch, RecordingHandler app, TlsCloseEvent event,
                                                  byte[] plaintext) {
        assertThat(ch.isOpen()).isTrue();
        assertThat(ch.isActive()).isTrue();
        assertOnlyApp(ch);
        assertThat(app.receivedBytes()).as("plaintext after close_notify, byte for byte").isEqualTo(plaintext);
        List<Object> timeline = app.timeline();
        assertThat(firstReadIndex(timeline)).as("plaintext after the event: " + timeline)
                .isGreaterThan(timeline.indexOf(event));
        assertThat(app.isInactive()).isFalse();
        assertThat(ch.runScheduledPendingTasks()).as("no timer left once the closure concluded").isEqualTo(-1);
    }

    /** Both handed-back transports carry plaintext, unencrypted, both ways. */
    private static void assertPlaintextBothWays(Fixture f) {
        f.client().writeAndFlush(buf(f.client(), CLIENT_PLAINTEXT));
        byte[] fromClient = f.pair.drainOutbound(Side.CLIENT);
        assertThat(fromClient).isEqualTo(CLIENT_PLAINTEXT);
        f.pair.deliver(Side.SERVER, fromClient);
        assertThat(f.serverApp().receivedBytes()).isEqualTo(CLIENT_PLAINTEXT);

        byte[] more = ascii("more");
        f.server().writeAndFlush(buf(f.server(), more));
        f.pair.forward(Side.SERVER);
        assertThat(f.clientApp().receivedBytes()).isEqualTo(TlsRecords.concat(SERVER_PLAINTEXT, more));
    }
}
