package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.testing.TlsPair.Side;
import io.github.gracefultls.testing.TlsRecords;
import io.netty.channel.ChannelFuture;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.ascii;
import static io.github.gracefultls.PairTestSupport.assertCleanPeerEvent;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.completions;
import static io.github.gracefultls.PairTestSupport.endOfRecords;
import static io.github.gracefultls.PairTestSupport.firstReadIndex;
import static io.github.gracefultls.PairTestSupport.isTrueHalfClose;
import static io.github.gracefultls.PairTestSupport.lastReadIndex;
import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static io.github.gracefultls.PairTestSupport.randomBytes;
import static io.github.gracefultls.TransportReusePairTest.assertOnlyApp;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The peer begins: its close_notify reaches our {@link GracefulTlsCloseHandler} (the server here) before we began a
 * closure, and the {@link PeerClosePolicy} decides what follows. The peer (client) is a bare {@code SslHandler}
 * driven by hand, so that every close_notify on the wire is one this test asked for.
 */
class PeerClosePolicyPairTest {

    private static final byte[] PAYLOAD = randomBytes(20_000, 3);

    private static GracefulTlsCloseHandler withPolicy(PeerClosePolicy policy) {
        return GracefulTlsCloseHandler.builder().peerClosePolicy(policy).build();
    }

    /** The client (bare SslHandler) sends its close_notify to the server. */
    private static void peerSendsCloseNotify(Fixture f) {
        assertThat(f.pair.clientSsl().closeOutbound().isSuccess()).isTrue();
        f.pair.forward(Side.CLIENT);
    }

    // ---------------------------------------------------------------------------------------------------------
    // CLOSE (the default)
    // ---------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void policyCloseRepliesCloseNotifyOnEveryEngineAndClosesTheTransport(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, null, new GracefulTlsCloseHandler()).handshake()) {
            f.server().writeAndFlush(buf(f.server(), PAYLOAD)); // in flight toward the peer
            peerSendsCloseNotify(f);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.serverApp());
            assertCleanPeerEvent(event);
            assertThat(f.server().isOpen()).isFalse();
            assertThat(f.serverApp().isInactive()).isTrue();
            assertThat(f.serverHandler().closeFuture().getNow()).isSameAs(event);

            f.pair.forward(Side.SERVER);

            assertThat(f.clientApp().receivedBytes()).isEqualTo(PAYLOAD);
            assertThat(f.pair.clientSsl().sslCloseFuture().isSuccess())
                    .as("our close_notify reached the peer (sent by us on JDK TLS 1.3, by the engine elsewhere)")
                    .isTrue();
            assertThat(f.pair.pump()).as("nothing more on the wire").isZero();
        }
    }

    /**
     * Writes issued (not flushed) before the peer's close_notify: "flush what was written". A true half-close
     * engine (JDK TLS 1.3) sends them before our close_notify; the other engines already replied close_notify on
     * their own and can no longer send them (SPEC, "TLS engines differ").
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void policyCloseFlushesWhatWasWrittenBeforeOurCloseNotifyWhereTheEngineAllows(SslProvider provider,
                                                                                 String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, null, new GracefulTlsCloseHandler()).handshake()) {
            ChannelFuture written = f.server().write(buf(f.server(), PAYLOAD)); // not flushed
            peerSendsCloseNotify(f);

            assertCleanPeerEvent(assertOneEventBeforeInactive(f.serverApp()));
            assertThat(f.server().isOpen()).isFalse();
            f.pair.forward(Side.SERVER);
            assertThat(f.pair.clientSsl().sslCloseFuture().isSuccess()).isTrue();
            if (isTrueHalfClose(provider, protocol)) {
                assertThat(written.isSuccess()).isTrue();
                assertThat(f.clientApp().receivedBytes()).isEqualTo(PAYLOAD);
            } else {
                assertThat(written.cause()).isInstanceOf(SslClosedEngineException.class);
                assertThat(f.clientApp().receivedBytes()).isEmpty();
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // HALF_CLOSE
    // ---------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void policyHalfCloseLeavesTheChannelOpenAndALaterCloseDoesNotWait(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, null, withPolicy(PeerClosePolicy.HALF_CLOSE)).handshake()) {
            peerSendsCloseNotify(f);

            TlsCloseEvent event = onlyEvent(f.serverApp());
            assertCleanPeerEvent(event);
            assertThat(f.server().isOpen()).isTrue();
            assertThat(f.server().isActive()).isTrue();
            assertThat(f.server().runScheduledPendingTasks()).as("nothing scheduled").isEqualTo(-1);

            byte[] reply = ascii("the rest of the response");
            ChannelFuture written = f.server().writeAndFlush(buf(f.server(), reply));
            if (isTrueHalfClose(provider, protocol)) {
                assertThat(written.isSuccess()).as("JDK TLS 1.3: a true half-close").isTrue();
                assertThat(f.pair.hasPendingOutbound(Side.SERVER)).as("engine did not reply").isTrue();
                f.pair.forward(Side.SERVER);
                assertThat(f.clientApp().receivedBytes()).isEqualTo(reply);
                assertThat(f.pair.clientSsl().sslCloseFuture().isDone()).isFalse();
            } else {
                assertThat(written.cause()).as("the engine replied already").isInstanceOf(
                        SslClosedEngineException.class);
                f.pair.forward(Side.SERVER); // the engine's own reply
                assertThat(f.pair.clientSsl().sslCloseFuture().isSuccess()).isTrue();
            }
            f.pair.advanceTimeBy(10, TimeUnit.SECONDS);
            assertThat(f.server().isOpen()).as("HALF_CLOSE has no deadline").isTrue();

            ChannelFuture closed = f.server().close();
            AtomicInteger closeCompletions = completions(closed);

            assertThat(closed.isSuccess()).as("no wait, no further peer input").isTrue();
            assertThat(closeCompletions).hasValue(1);
            assertThat(f.server().isOpen()).isFalse();
            assertThat(assertOneEventBeforeInactive(f.serverApp())).as("no second TlsCloseEvent").isSameAs(event);
            assertThat(f.serverHandler().closeFuture().getNow()).isSameAs(event);
            f.pair.forward(Side.SERVER);
            assertThat(f.pair.clientSsl().sslCloseFuture().isSuccess()).as("our close_notify went out").isTrue();
            assertThat(f.clientApp().receivedBytes()).isEqualTo(isTrueHalfClose(provider, protocol) ? reply
                    : new byte[0]);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // REUSE_TRANSPORT
    // ---------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void policyReuseTransportRepliesThenCarriesPlaintext(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, null, withPolicy(PeerClosePolicy.REUSE_TRANSPORT))
                .handshake()) {
            byte[] clientPlaintext = ascii("CCC done; plaintext from the client\r\n");
            assertThat(f.pair.clientSsl().closeOutbound().isSuccess()).isTrue();
            byte[] closeNotify = f.pair.drainOutbound(Side.CLIENT);
            f.pair.deliver(Side.SERVER, TlsRecords.concat(closeNotify, clientPlaintext)); // one buffer

            TlsCloseEvent event = onlyEvent(f.serverApp());
            assertCleanPeerEvent(event);
            assertThat(f.server().isOpen()).isTrue();
            assertOnlyApp(f.server());
            assertThat(f.serverApp().receivedBytes()).isEqualTo(clientPlaintext);
            List<Object> timeline = f.serverApp().timeline();
            assertThat(firstReadIndex(timeline)).as(timeline.toString()).isGreaterThan(timeline.indexOf(event));
            assertThat(f.server().runScheduledPendingTasks()).isEqualTo(-1);

            // Our reply went out before anything written in plaintext.
            byte[] serverPlaintext = ascii("200 plaintext from the server\r\n");
            f.server().writeAndFlush(buf(f.server(), serverPlaintext));
            byte[] wire = f.pair.drainOutbound(Side.SERVER);
            int end = endOfRecords(wire);
            assertThat(Arrays.copyOfRange(wire, end, wire.length)).isEqualTo(serverPlaintext);
            f.pair.deliver(Side.CLIENT, Arrays.copyOf(wire, end));
            assertThat(f.pair.clientSsl().sslCloseFuture().isSuccess()).as("our close_notify reached the peer")
                    .isTrue();

            // More plaintext from the peer passes straight through.
            byte[] more = ascii("QUIT\r\n");
            f.pair.deliver(Side.SERVER, more);
            assertThat(f.serverApp().receivedBytes()).isEqualTo(TlsRecords.concat(clientPlaintext, more));
            assertThat(lastReadIndex(f.serverApp().timeline())).isPositive();
            assertThat(f.serverApp().isInactive()).isFalse();
        }
    }

    /** Under HALF_CLOSE, a later bye(SHUT_RDWR) has nothing to wait for: it replies and hands the transport back. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeAfterThePeersHalfCloseHandsTheTransportBackAtOnce(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, null, withPolicy(PeerClosePolicy.HALF_CLOSE)).handshake()) {
            peerSendsCloseNotify(f);
            TlsCloseEvent event = onlyEvent(f.serverApp());
            assertCleanPeerEvent(event);

            Future<TlsCloseEvent> bye = f.serverHandler().bye(TlsCloseMode.SHUT_RDWR);

            assertThat(bye.isSuccess()).as("no wait").isTrue();
            assertThat(bye.getNow()).as("the one event of the channel").isSameAs(event);
            assertThat(onlyEvent(f.serverApp())).isSameAs(event);
            assertThat(f.server().isOpen()).isTrue();
            assertOnlyApp(f.server());
            assertThat(f.server().runScheduledPendingTasks()).isEqualTo(-1);
            byte[] plaintext = ascii("plaintext");
            f.server().writeAndFlush(buf(f.server(), plaintext));
            byte[] wire = f.pair.drainOutbound(Side.SERVER);
            int end = endOfRecords(wire);
            assertThat(Arrays.copyOfRange(wire, end, wire.length)).isEqualTo(plaintext);
            f.pair.deliver(Side.CLIENT, Arrays.copyOf(wire, end));
            assertThat(f.pair.clientSsl().sslCloseFuture().isSuccess()).as("our close_notify went out first")
                    .isTrue();
        }
    }
}
