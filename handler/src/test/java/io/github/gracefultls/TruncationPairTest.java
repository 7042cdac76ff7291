package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.testing.TlsPair.Side;
import io.github.gracefultls.testing.TlsRecords;
import io.github.gracefultls.testing.TlsRecords.Record;
import io.netty.channel.ChannelFuture;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.assertCleanPeerEvent;
import static io.github.gracefultls.PairTestSupport.assertCompletedWith;
import static io.github.gracefultls.PairTestSupport.assertEvent;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.completions;
import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static io.github.gracefultls.PairTestSupport.randomBytes;
import static io.github.gracefultls.TlsCloseInitiator.LOCAL;
import static io.github.gracefultls.TlsCloseInitiator.PEER;
import static io.github.gracefultls.TlsCloseMode.SHUT_RDWR;
import static io.github.gracefultls.TlsCloseMode.SHUT_WR;
import static io.github.gracefultls.TlsCloseStatus.TRUNCATED;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The transport's input ends before the peer's close_notify: {@code TRUNCATED}, the channel is closed. An
 * {@code EmbeddedChannel} gets no FIN, so the end of input is simulated by firing
 * {@link ChannelInputShutdownEvent} through our pipeline (what a socket channel with {@code ALLOW_HALF_CLOSURE}
 * does on FIN), or by closing the transport underneath the pipeline.
 */
class TruncationPairTest {

    private static final byte[] PAYLOAD = randomBytes(20_000, 9); // two TLS records

    private static void inputEnds(EmbeddedChannel ch) {
        ch.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        ch.runPendingTasks();
    }

    private static TlsTruncationException truncation(TlsCloseEvent event) {
        assertThat(event.cause()).as("cause of " + event).isInstanceOf(TlsTruncationException.class);
        return (TlsTruncationException) event.cause();
    }

    /** The peer closed its transport without close_notify; we see the end of our input at a record boundary. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void inputEndingWithoutCloseNotifyAtARecordBoundaryIsTruncated(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            Future<TlsCloseEvent> closeFuture = f.clientHandler().closeFuture();
            AtomicInteger closeFutureCompletions = completions(closeFuture);
            f.server().writeAndFlush(buf(f.server(), PAYLOAD));
            f.pair.forward(Side.SERVER);
            f.server().pipeline().firstContext().close(); // below the SslHandler: no close_notify
            assertThat(f.pair.hasPendingOutbound(Side.SERVER)).as("no close_notify from the peer").isFalse();
            f.pair.advanceTimeBy(1, TimeUnit.SECONDS);

            inputEnds(f.client());

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TRUNCATED, PEER, null);
            assertThat(event.elapsed()).isEqualTo(Duration.ZERO);
            TlsTruncationException cause = truncation(event);
            assertThat(cause.undecodedBytes()).isZero();
            assertThat(cause.isInsideRecord()).isFalse();
            assertThat(f.client().isOpen()).isFalse();
            assertThat(f.clientApp().isInactive()).isTrue();
            assertThat(f.clientApp().receivedBytes()).isEqualTo(PAYLOAD);
            assertCompletedWith(closeFuture, closeFutureCompletions, event);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void inputEndingInsideARecordSaysHowManyBytesOfItArrived(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD));
            byte[] wire = f.pair.drainOutbound(Side.SERVER);
            List<Record> records = TlsRecords.parse(wire);
            assertThat(records).hasSizeGreaterThanOrEqualTo(2);
            int partial = 10; // a header and 5 bytes of the second record's body
            int cut = records.get(records.size() - 1).offset() + partial;
            f.pair.deliver(Side.CLIENT, Arrays.copyOf(wire, cut));
            int delivered = f.clientApp().receivedBytes().length;
            assertThat(delivered).as("the complete records were delivered").isPositive().isLessThan(PAYLOAD.length);

            inputEnds(f.client());

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TRUNCATED, PEER, null);
            TlsTruncationException cause = truncation(event);
            assertThat(cause.undecodedBytes()).isEqualTo(partial);
            assertThat(cause.isInsideRecord()).isTrue();
            assertThat(f.client().isOpen()).isFalse();
            assertThat(f.clientApp().receivedBytes()).isEqualTo(Arrays.copyOf(PAYLOAD, delivered));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void inputEndingDuringOurCloseWaitIsATruncationOfOurClose(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            ChannelFuture closed = f.client().pipeline().close();
            AtomicInteger closeCompletions = completions(closed);
            f.pair.forward(Side.CLIENT); // the peer gets our close_notify, but its reply is lost
            f.pair.drainOutbound(Side.SERVER);
            f.pair.advanceTimeBy(4, TimeUnit.MILLISECONDS);

            inputEnds(f.client());

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TRUNCATED, LOCAL, SHUT_RDWR);
            assertThat(event.elapsed()).isEqualTo(Duration.ofMillis(4));
            assertThat(truncation(event).undecodedBytes()).isZero();
            assertThat(f.client().isOpen()).isFalse();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(closeCompletions).hasValue(1);
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void inputEndingDuringByeShutWrIsTruncatedAndClosesTheChannel(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_WR);
            AtomicInteger byeCompletions = completions(bye);
            f.pair.advanceTimeBy(6, TimeUnit.MILLISECONDS);

            inputEnds(f.client());

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TRUNCATED, LOCAL, SHUT_WR);
            assertThat(event.elapsed()).isEqualTo(Duration.ofMillis(6));
            assertCompletedWith(bye, byeCompletions, event);
            assertThat(f.client().isOpen()).isFalse();
        }
    }

    /**
     * Without half-closure a cut transport becomes inactive: the count of an incomplete record must come from before
     * the SslHandler releases its buffer, on engines that keep partial records there (JDK) and on those that do not
     * (OpenSSL, followed by the record framing).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void transportClosedUnderneathInsideARecordSaysHowManyBytesOfItArrived(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD));
            byte[] wire = f.pair.drainOutbound(Side.SERVER);
            List<Record> records = TlsRecords.parse(wire);
            int partial = 7; // a header and 2 bytes of the last record's body
            int cut = records.get(records.size() - 1).offset() + partial;
            f.pair.deliver(Side.CLIENT, Arrays.copyOf(wire, cut));
            int delivered = f.clientApp().receivedBytes().length;

            f.client().pipeline().firstContext().close();
            f.client().runPendingTasks();

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TRUNCATED, PEER, null);
            TlsTruncationException cause = truncation(event);
            assertThat(cause.undecodedBytes()).isEqualTo(partial);
            assertThat(cause.isInsideRecord()).isTrue();
            assertThat(cause.getMessage()).contains("inside a TLS record (7 bytes of it had arrived)");
            assertThat(f.clientApp().receivedBytes()).isEqualTo(Arrays.copyOf(PAYLOAD, delivered));
        }
    }

    /** Bytes arriving one per read, headers split anywhere: the count of the cut record is still exact. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void inputEndingAfterOneByteReadsSaysHowManyBytesOfTheCutRecordArrived(SslProvider provider, String protocol) {
        for (int partial = 0; partial <= 12; partial++) {
            try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(),
                    new GracefulTlsCloseHandler()).handshake()) {
                for (int i = 0; i < 3; i++) { // three small records
                    f.server().writeAndFlush(buf(f.server(), Arrays.copyOf(PAYLOAD, 40)));
                }
                byte[] wire = f.pair.drainOutbound(Side.SERVER);
                List<Record> records = TlsRecords.parse(wire);
                assertThat(records).hasSizeGreaterThanOrEqualTo(3);
                int cut = records.get(records.size() - 1).offset() + partial;
                for (int i = 0; i < cut; i++) {
                    f.pair.deliver(Side.CLIENT, new byte[] {wire[i]});
                }

                inputEnds(f.client());

                TlsTruncationException cause = truncation(assertOneEventBeforeInactive(f.clientApp()));
                assertThat(cause.undecodedBytes()).as("cut %d bytes into the record", partial).isEqualTo(partial);
            }
        }
    }

    /**
     * Nothing is added before the SslHandler: for an engine fed whole records (JDK) without half-closure nothing
     * at all, the SslHandler's buffer tells; for OpenSSL, which buffers partial records itself, and for a FIN under
     * half-closure, the record framing is followed by the SslHandler's cumulator, set in front of its own.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void nothingBeforeTheSslHandlerAndItsCumulatorFollowsTheFramingWhereNeeded(SslProvider provider,
                                                                               String protocol) {
        for (boolean halfClosure : new boolean[] {false, true}) {
            try (Fixture f = halfClosure
                    ? Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), null)
                    : Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), null)) {
                String as = provider + " halfClosure=" + halfClosure;
                assertThat(f.client().pipeline().first()).as(as).isInstanceOf(SslHandler.class);
                SslHandler ssl = f.client().pipeline().get(SslHandler.class);
                boolean follows = provider == SslProvider.OPENSSL || halfClosure;
                assertThat(SslHandlerAccess.cumulator(ssl) instanceof RecordFraming).as(as).isEqualTo(follows);

                // Leaving the pipeline, the handler gives the SslHandler its own cumulator back.
                f.client().pipeline().remove(GracefulTlsCloseHandler.class);
                assertThat(SslHandlerAccess.cumulator(ssl)).as(as).isNotInstanceOf(RecordFraming.class);
            }
        }
    }

    /** The transport closes underneath the pipeline (as after an RST): inactive without close_notify. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void transportClosedUnderneathIsTruncated(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            Future<TlsCloseEvent> closeFuture = f.clientHandler().closeFuture();

            f.client().pipeline().firstContext().close();
            f.client().runPendingTasks();

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertThat(event.status()).isEqualTo(TRUNCATED);
            assertThat(event.initiator()).isEqualTo(PEER);
            assertThat(truncation(event).undecodedBytes()).isZero();
            assertThat(f.client().isOpen()).isFalse();
            assertThat(f.clientApp().isInactive()).isTrue();
            assertThat(closeFuture.getNow()).isSameAs(event);
        }
    }

    /** A FIN after the peer's close_notify is the normal end of a clean closure, not a truncation. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void inputEndingAfterThePeersCloseNotifyIsNotATruncation(SslProvider provider, String protocol) {
        GracefulTlsCloseHandler client = GracefulTlsCloseHandler.builder()
                .peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build();
        try (Fixture f = Fixture.halfClosing(provider, protocol, client, new GracefulTlsCloseHandler()).handshake()) {
            f.serverHandler().bye(SHUT_WR);
            f.pair.forward(Side.SERVER);
            TlsCloseEvent event = onlyEvent(f.clientApp());
            assertCleanPeerEvent(event);

            inputEnds(f.client());

            assertThat(onlyEvent(f.clientApp())).isSameAs(event);
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);
        }
    }
}
