package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.testing.TlsPair.Side;
import io.github.gracefultls.testing.TlsRecords;
import io.github.gracefultls.testing.TlsRecords.Record;
import io.netty.channel.ChannelFuture;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import javax.net.ssl.SSLException;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.assertCleanPeerEvent;
import static io.github.gracefultls.PairTestSupport.assertCompletedWith;
import static io.github.gracefultls.PairTestSupport.assertEvent;
import static io.github.gracefultls.PairTestSupport.assertNoEvent;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.completions;
import static io.github.gracefultls.PairTestSupport.isTrueHalfClose;
import static io.github.gracefultls.PairTestSupport.lastReadIndex;
import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static io.github.gracefultls.PairTestSupport.randomBytes;
import static io.github.gracefultls.testing.Tls.TLS_1_2;
import static io.github.gracefultls.TlsCloseInitiator.LOCAL;
import static io.github.gracefultls.TlsCloseMode.SHUT_RDWR;
import static io.github.gracefultls.TlsCloseMode.SHUT_WR;
import static io.github.gracefultls.TlsCloseStatus.CLOSE_NOTIFY_RECEIVED;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link GracefulTlsCloseHandler} between two {@code EmbeddedChannel}s with real {@code SslHandler}s: the
 * intercepted {@code close()} (SHUT_RDWR, then close), and what happens before the handshake. Transport reuse, peer
 * close policies, timeouts and truncations have their own {@code *PairTest}s.
 */
class GracefulTlsCloseHandlerPairTest {

    private static final byte[] PAYLOAD = randomBytes(20_000, 42); // more than one TLS record

    // ---------------------------------------------------------------------------------------------------------
    // close(): SHUT_RDWR, then the transport closes
    // ---------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeDeliversPendingWritesThenCloseNotifyAndWaitsForThePeersReply(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            f.client().write(buf(f.client(), PAYLOAD)); // written, not flushed
            ChannelFuture closed = f.client().close();
            AtomicInteger closeCompletions = completions(closed);
            Future<TlsCloseEvent> closeFuture = f.clientHandler().closeFuture();
            AtomicInteger closeFutureCompletions = completions(closeFuture);

            assertThat(closed.isDone()).as("close() waits for the peer's close_notify").isFalse();
            assertThat(f.client().isOpen()).isTrue();
            assertNoEvent(f.clientApp());

            byte[] wire = f.pair.drainOutbound(Side.CLIENT);
            List<Record> records = TlsRecords.parse(wire);
            assertThat(records).as("the payload's records, then close_notify").hasSizeGreaterThanOrEqualTo(3);
            if (TLS_1_2.equals(protocol)) {
                assertThat(records.subList(0, records.size() - 1)).allMatch(Record::isApplicationData);
                assertThat(records.get(records.size() - 1).isAlert()).as(records.toString()).isTrue();
            }

            f.pair.deliver(Side.SERVER, wire);

            // The peer (default policy CLOSE) got the payload in full, then the close_notify.
            assertThat(f.serverApp().receivedBytes()).isEqualTo(PAYLOAD);
            TlsCloseEvent peerEvent = assertOneEventBeforeInactive(f.serverApp());
            assertCleanPeerEvent(peerEvent);
            List<Object> serverTimeline = f.serverApp().timeline();
            assertThat(lastReadIndex(serverTimeline)).as(serverTimeline.toString())
                    .isLessThan(serverTimeline.indexOf(peerEvent));
            assertThat(f.server().isOpen()).as("policy CLOSE closes the peer's transport").isFalse();
            assertThat(f.serverHandler().closeFuture().getNow()).isSameAs(peerEvent);

            f.pair.advanceTimeBy(7, TimeUnit.MILLISECONDS);
            assertThat(closed.isDone()).isFalse();
            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(event.elapsed()).isEqualTo(Duration.ofMillis(7));
            assertThat(event.discardedBytes()).isZero();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(closeCompletions).hasValue(1);
            assertThat(f.client().isOpen()).isFalse();
            assertThat(f.clientApp().isInactive()).isTrue();
            assertCompletedWith(closeFuture, closeFutureCompletions, event);
            assertThat(f.clientApp().receivedBytes()).isEmpty();
        }
    }

    /** bye() in either mode: writes issued (not flushed) before it go out in full, then our close_notify. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeSendsWritesAlreadyIssuedBeforeItsCloseNotify(SslProvider provider, String protocol) {
        for (TlsCloseMode mode : TlsCloseMode.values()) {
            try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(),
                    new GracefulTlsCloseHandler()).handshake()) {
                ChannelFuture written = f.client().write(buf(f.client(), PAYLOAD)); // not flushed
                Future<TlsCloseEvent> bye = f.clientHandler().bye(mode);

                assertThat(written.isSuccess()).as(mode + ": the write went out").isTrue();
                assertThat(bye.isDone()).as(mode + ": waiting for the peer, " + bye).isFalse();
                f.pair.forward(Side.CLIENT);
                assertThat(f.serverApp().receivedBytes()).as(mode.name()).isEqualTo(PAYLOAD);
                assertCleanPeerEvent(onlyEvent(f.serverApp()));
                f.pair.forward(Side.SERVER);

                TlsCloseEvent event = onlyEvent(f.clientApp());
                assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, mode);
                assertThat(bye.getNow()).isSameAs(event);
                assertThat(f.client().isOpen()).as(mode + ": transport left for reuse").isTrue();
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void disconnectBehavesAsClose(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            ChannelFuture disconnected = f.client().disconnect();
            f.pair.forward(Side.CLIENT);
            assertThat(disconnected.isDone()).isFalse();
            f.pair.advanceTimeBy(3, TimeUnit.MILLISECONDS);

            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(event.elapsed()).isEqualTo(Duration.ofMillis(3));
            assertThat(disconnected.isSuccess()).isTrue();
            assertThat(f.client().isOpen()).isFalse();
        }
    }

    /** Our side has policy HALF_CLOSE: the peer's close_notify arrives first, a later close() has nothing to wait for. */
    /** Whoever began, a listener of closeFuture() finds the event already fired through the pipeline. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeFutureCompletesAfterTheEventWasFired(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            List<Integer> clientSeen = new ArrayList<>();
            List<Integer> serverSeen = new ArrayList<>();
            f.clientHandler().closeFuture().addListener(
                    x -> clientSeen.add(f.clientApp().eventsOfType(TlsCloseEvent.class).size()));
            f.serverHandler().closeFuture().addListener(
                    x -> serverSeen.add(f.serverApp().eventsOfType(TlsCloseEvent.class).size()));

            f.client().pipeline().close();
            f.pair.pump();

            assertThat(clientSeen).as("events seen by the local closer's listener").containsExactly(1);
            assertThat(serverSeen).as("events seen by the peer's listener").containsExactly(1);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeAfterThePeersCloseNotifyDoesNotWait(SslProvider provider, String protocol) {
        GracefulTlsCloseHandler client = GracefulTlsCloseHandler.builder()
                .peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build();
        try (Fixture f = Fixture.of(provider, protocol, client, new GracefulTlsCloseHandler()).handshake()) {
            Future<TlsCloseEvent> serverBye = f.serverHandler().bye(SHUT_WR);
            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertCleanPeerEvent(event);
            assertThat(f.client().isOpen()).as("HALF_CLOSE leaves the channel open").isTrue();
            f.pair.advanceTimeBy(1, TimeUnit.SECONDS);

            ChannelFuture closed = f.client().close();
            AtomicInteger closeCompletions = completions(closed);

            assertThat(closed.isSuccess()).as("no wait: the peer's close_notify had arrived").isTrue();
            assertThat(closeCompletions).hasValue(1);
            assertThat(f.client().isOpen()).isFalse();
            assertThat(onlyEvent(f.clientApp())).isSameAs(event);
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);

            // Our close_notify reached the peer, whose bye(SHUT_WR) ends cleanly.
            f.pair.forward(Side.CLIENT);
            assertThat(serverBye.isSuccess()).isTrue();
            assertEvent(serverBye.getNow(), CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_WR);
        }
    }

    /**
     * Data the peer wrote before our close_notify reached it arrives during our wait: released, counted, not
     * delivered. The data and the peer's close_notify come in one buffer.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeDiscardsDataInFlightAndCountsIt(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD)); // in flight
            ChannelFuture closed = f.client().close();
            f.pair.forward(Side.CLIENT); // our close_notify; the peer (CLOSE) replies and closes
            assertThat(f.server().isOpen()).isFalse();

            f.pair.forward(Side.SERVER); // the payload and the peer's close_notify, in one buffer

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(event.discardedBytes()).isEqualTo(PAYLOAD.length);
            assertThat(f.clientApp().receivedBytes()).as("discarded, not delivered").isEmpty();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(f.client().isOpen()).isFalse();
        }
    }

    /**
     * With {@code failOnDataAfterCloseNotify}, the same data ends the closure FAILED, as BoringSSL's SSL_shutdown
     * does: counted, not delivered, and the transport closes.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeFailsOnDataInFlightWhenAsked(SslProvider provider, String protocol) {
        GracefulTlsCloseHandler strict = GracefulTlsCloseHandler.builder().failOnDataAfterCloseNotify(true).build();
        try (Fixture f = Fixture.of(provider, protocol, strict, new GracefulTlsCloseHandler()).handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD)); // in flight
            ChannelFuture closed = f.client().close();
            f.pair.forward(Side.CLIENT);

            f.pair.forward(Side.SERVER); // the payload and the peer's close_notify, in one buffer

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TlsCloseStatus.FAILED, LOCAL, SHUT_RDWR);
            assertThat(event.cause()).isInstanceOf(SSLException.class)
                    .hasMessageContaining("application data while waiting for the peer's close_notify");
            // The first record fails the closure; the records after it are released uncounted.
            assertThat(event.discardedBytes()).isPositive().isLessThanOrEqualTo(PAYLOAD.length);
            assertThat(f.clientApp().receivedBytes()).as("discarded, not delivered").isEmpty();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(f.client().isOpen()).isFalse();
        }
    }

    /** Under SHUT_WR the peer's data is the application's: delivered, even with {@code failOnDataAfterCloseNotify}. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutWrDeliversDataInFlightEvenWhenStrict(SslProvider provider, String protocol) {
        GracefulTlsCloseHandler strict = GracefulTlsCloseHandler.builder().failOnDataAfterCloseNotify(true).build();
        try (Fixture f = Fixture.of(provider, protocol, strict, new GracefulTlsCloseHandler()).handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD)); // in flight
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_WR);
            f.pair.forward(Side.CLIENT);

            f.pair.forward(Side.SERVER);

            assertThat(bye.isSuccess()).as("%s", bye).isTrue();
            assertEvent(bye.getNow(), CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_WR);
            assertThat(bye.getNow().discardedBytes()).isZero();
            assertThat(f.clientApp().receivedBytes()).isEqualTo(PAYLOAD);
        }
    }

    /**
     * The peer writes after it received our close_notify: only a true half-close engine (JDK, TLS 1.3) can; there
     * the data is discarded and counted. Other engines replied close_notify already and reject the write.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeDiscardsDataThePeerWritesAfterOurCloseNotify(SslProvider provider, String protocol) {
        GracefulTlsCloseHandler server = GracefulTlsCloseHandler.builder()
                .peerClosePolicy(PeerClosePolicy.HALF_CLOSE).build();
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), server).handshake()) {
            ChannelFuture closed = f.client().close();
            f.pair.forward(Side.CLIENT);
            assertCleanPeerEvent(onlyEvent(f.serverApp()));
            assertThat(f.server().isOpen()).isTrue();

            ChannelFuture written = f.server().writeAndFlush(buf(f.server(), PAYLOAD));
            if (isTrueHalfClose(provider, protocol)) {
                assertThat(written.isSuccess()).as("JDK TLS 1.3 can write after the peer's close_notify").isTrue();
            } else {
                assertThat(written.cause()).as("engine replied close_notify: no more writes")
                        .isInstanceOf(SslClosedEngineException.class);
            }
            ChannelFuture serverClosed = f.server().close();
            assertThat(serverClosed.isSuccess()).as("the peer's close needs no wait").isTrue();

            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(event.discardedBytes()).isEqualTo(isTrueHalfClose(provider, protocol) ? PAYLOAD.length : 0);
            assertThat(f.clientApp().receivedBytes()).isEmpty();
            assertThat(closed.isSuccess()).isTrue();
        }
    }

    /** The peer's close_notify record arrives in two pieces: the first piece alone is not a close_notify. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void partOfThePeersCloseNotifyRecordIsNotACloseNotify(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            ChannelFuture closed = f.client().close();
            f.pair.forward(Side.CLIENT);
            byte[] reply = f.pair.drainOutbound(Side.SERVER);

            f.pair.deliver(Side.CLIENT, Arrays.copyOf(reply, reply.length - 3));

            assertNoEvent(f.clientApp());
            assertThat(closed.isDone()).isFalse();
            assertThat(f.client().isOpen()).isTrue();

            f.pair.deliver(Side.CLIENT, Arrays.copyOfRange(reply, reply.length - 3, reply.length));

            assertEvent(assertOneEventBeforeInactive(f.clientApp()), CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(closed.isSuccess()).isTrue();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void secondCloseAndByeJoinTheCloseUnderWay(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            ChannelFuture first = f.client().close();
            byte[] closeNotify = f.pair.drainOutbound(Side.CLIENT);
            ChannelFuture second = f.client().close();
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);
            Future<TlsCloseEvent> shutdown = f.clientHandler().shutdownOutput();
            AtomicInteger[] counts = {completions(first), completions(second), completions(bye), completions(shutdown)};
            assertThat(f.pair.pendingOutboundBytes(Side.CLIENT)).as("one close_notify only").isZero();
            assertThat(first.isDone() || second.isDone() || bye.isDone() || shutdown.isDone()).isFalse();

            f.pair.deliver(Side.SERVER, closeNotify);
            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
            assertThat(first.isSuccess()).isTrue();
            assertThat(second.isSuccess()).isTrue();
            assertCompletedWith(bye, counts[2], event);
            assertCompletedWith(shutdown, counts[3], event);
            assertThat(counts[0]).hasValue(1);
            assertThat(counts[1]).hasValue(1);
            assertThat(f.client().isOpen()).as("close() wins over bye(): the transport closes").isFalse();
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);

            // A close() after the fact completes too.
            assertThat(f.client().close().isSuccess()).isTrue();
            assertThat(f.clientApp().eventsOfType(TlsCloseEvent.class)).hasSize(1);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Before the handshake
    // ---------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeBeforeTheHandshakePassesStraightThrough(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())) {
            Future<TlsCloseEvent> closeFuture = f.clientHandler().closeFuture();

            ChannelFuture closed = f.client().close();

            assertThat(closed.isSuccess()).isTrue();
            assertThat(f.client().isOpen()).isFalse();
            assertNoEvent(f.clientApp());
            assertThat(closeFuture.isDone()).as("closeFuture() taken before the close").isTrue();
            assertThat(closeFuture.cause()).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("handshake");
            Future<TlsCloseEvent> askedAfterwards = f.clientHandler().closeFuture();
            assertThat(askedAfterwards.isDone()).as("closeFuture() taken after the close").isTrue();
            assertThat(askedAfterwards.cause()).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("handshake");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeFutureFailsWhenThePeerClosesBeforeTheHandshake(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())) {
            f.pair.forward(Side.CLIENT); // ClientHello: the server's handshake is under way
            Future<TlsCloseEvent> closeFuture = f.serverHandler().closeFuture();
            AtomicInteger completions = completions(closeFuture);

            f.server().close();

            assertThat(f.server().isOpen()).isFalse();
            assertNoEvent(f.serverApp());
            assertThat(closeFuture.cause()).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("handshake");
            assertThat(completions).hasValue(1);
        }
    }

    /**
     * Nothing was sent or changed: only the ClientHello is on the wire, the handshake still succeeds, and a closure
     * afterwards (a {@code close()}, or a {@code bye(SHUT_RDWR)}) is clean.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeAndShutdownOutputBeforeTheHandshakeFail(SslProvider provider, String protocol) {
        for (boolean closeAfterwards : new boolean[] {true, false}) {
            try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(),
                    new GracefulTlsCloseHandler())) {
                Future<TlsCloseEvent> rdwr = f.clientHandler().bye(SHUT_RDWR);
                Future<TlsCloseEvent> wr = f.clientHandler().bye(SHUT_WR);
                Future<TlsCloseEvent> shutdown = f.clientHandler().shutdownOutput();
                Future<TlsCloseEvent> staticShutdown = GracefulTlsCloseHandler.shutdownOutput(f.client());

                for (Future<TlsCloseEvent> future : List.of(rdwr, wr, shutdown, staticShutdown)) {
                    assertThat(future.isDone()).isTrue();
                    assertThat(future.cause()).isInstanceOf(IllegalStateException.class)
                            .hasMessageContaining("handshake");
                }
                assertThat(f.client().isOpen()).isTrue();
                assertNoEvent(f.clientApp());
                assertThat(f.pair.hasPendingOutbound(Side.CLIENT)).isTrue(); // the ClientHello, no close_notify

                f.handshake();
                assertNoEvent(f.clientApp());
                if (closeAfterwards) {
                    ChannelFuture closed = f.client().close();
                    f.pair.forward(Side.CLIENT);
                    f.pair.forward(Side.SERVER);
                    assertThat(closed.isSuccess()).isTrue();
                    assertEvent(assertOneEventBeforeInactive(f.clientApp()), CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR);
                } else {
                    Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);
                    f.pair.pump();
                    assertThat(bye.isSuccess()).isTrue();
                    assertThat(bye.getNow().status()).isEqualTo(CLOSE_NOTIFY_RECEIVED);
                }
            }
        }
    }

}
