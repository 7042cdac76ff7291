package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.PairTestSupport.Stall;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.channel.ChannelFuture;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.stream.Stream;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.ascii;
import static io.github.gracefultls.PairTestSupport.assertCompletedWith;
import static io.github.gracefultls.PairTestSupport.assertEvent;
import static io.github.gracefultls.PairTestSupport.assertNoEvent;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.completions;
import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static io.github.gracefultls.PairTestSupport.randomBytes;
import static io.github.gracefultls.TlsCloseInitiator.LOCAL;
import static io.github.gracefultls.TlsCloseMode.SHUT_RDWR;
import static io.github.gracefultls.TlsCloseMode.SHUT_WR;
import static io.github.gracefultls.TlsCloseStatus.CLOSE_NOTIFY_RECEIVED;
import static io.github.gracefultls.TlsCloseStatus.TIMED_OUT;
import static io.github.gracefultls.TransportReusePairTest.assertOnlyApp;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * Deadlines, driven by the channels' frozen clocks: the peer's close_notify never comes (we simply do not forward
 * it), or ours cannot be flushed. Also: timers exist only while a closure is under way.
 *
 * <p>{@code EmbeddedChannel.close()} cancels every scheduled task of the channel once it returns (it assumes the
 * close is done), which would cancel our timers too: these tests close through {@code pipeline().close()}.
 */
class TimeoutPairTest {

    private static final Duration READ_TIMEOUT = Duration.ofMillis(250);
    private static final Duration HALF_CLOSE_TIMEOUT = Duration.ofSeconds(2);
    private static final Duration FLUSH_TIMEOUT = Duration.ofMillis(400);

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeTimesOutExactlyAtTheReadTimeoutAndClosesTheChannel(SslProvider provider, String protocol) {
        GracefulTlsCloseHandler client = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(READ_TIMEOUT).build();
        try (Fixture f = Fixture.of(provider, protocol, client, new GracefulTlsCloseHandler()).handshake()) {
            ChannelFuture closed = f.client().pipeline().close();
            AtomicInteger closeCompletions = completions(closed);
            Future<TlsCloseEvent> closeFuture = f.clientHandler().closeFuture();
            AtomicInteger closeFutureCompletions = completions(closeFuture);
            assertThat(f.client().runScheduledPendingTasks()).as("read timer armed for the full timeout")
                    .isEqualTo(READ_TIMEOUT.toNanos());

            f.pair.advanceTimeBy(READ_TIMEOUT.toMillis() - 1, TimeUnit.MILLISECONDS);

            assertNoEvent(f.clientApp());
            assertThat(closed.isDone()).isFalse();
            assertThat(f.client().isOpen()).isTrue();

            f.pair.advanceTimeBy(1, TimeUnit.MILLISECONDS);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TIMED_OUT, LOCAL, SHUT_RDWR);
            assertThat(event.cause()).isInstanceOf(TimeoutException.class);
            assertThat(event.elapsed()).isEqualTo(READ_TIMEOUT);
            assertThat(event.discardedBytes()).isZero();
            assertThat(f.client().isOpen()).isFalse();
            assertThat(f.clientApp().isInactive()).isTrue();
            assertThat(closed.isSuccess()).as("the close promise succeeds once the transport is closed").isTrue();
            assertThat(closeCompletions).hasValue(1);
            assertCompletedWith(closeFuture, closeFutureCompletions, event);
        }
    }

    /** bye(SHUT_RDWR) that times out closes the channel: its state cannot be trusted. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrThatTimesOutClosesTheChannel(SslProvider provider, String protocol) {
        GracefulTlsCloseHandler client = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(READ_TIMEOUT).build();
        try (Fixture f = Fixture.of(provider, protocol, client, new GracefulTlsCloseHandler()).handshake()) {
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);
            AtomicInteger byeCompletions = completions(bye);

            f.pair.advanceTimeBy(READ_TIMEOUT.toMillis() - 1, TimeUnit.MILLISECONDS);
            assertThat(bye.isDone()).isFalse();
            f.pair.advanceTimeBy(1, TimeUnit.MILLISECONDS);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TIMED_OUT, LOCAL, SHUT_RDWR);
            assertThat(event.elapsed()).isEqualTo(READ_TIMEOUT);
            assertCompletedWith(bye, byeCompletions, event);
            assertThat(f.client().isOpen()).isFalse();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutWrTimesOutExactlyAtTheHalfCloseTimeout(SslProvider provider, String protocol) {
        halfCloseTimesOut(provider, protocol, h -> h.bye(SHUT_WR));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void shutdownOutputTimesOutExactlyAtTheHalfCloseTimeout(SslProvider provider, String protocol) {
        halfCloseTimesOut(provider, protocol, GracefulTlsCloseHandler::shutdownOutput);
    }

    private static void halfCloseTimesOut(SslProvider provider, String protocol,
                                          Function<GracefulTlsCloseHandler, Future<TlsCloseEvent>> halfClose) {
        GracefulTlsCloseHandler client = GracefulTlsCloseHandler.builder()
                .halfCloseTimeout(HALF_CLOSE_TIMEOUT).closeNotifyReadTimeout(READ_TIMEOUT).build();
        try (Fixture f = Fixture.of(provider, protocol, client, new GracefulTlsCloseHandler()).handshake()) {
            Future<TlsCloseEvent> bye = halfClose.apply(f.clientHandler());
            AtomicInteger byeCompletions = completions(bye);
            assertThat(f.client().runScheduledPendingTasks()).as("half-close timer, not the read timer")
                    .isEqualTo(HALF_CLOSE_TIMEOUT.toNanos());

            f.pair.advanceTimeBy(HALF_CLOSE_TIMEOUT.toMillis() - 1, TimeUnit.MILLISECONDS);
            assertNoEvent(f.clientApp());
            assertThat(bye.isDone()).isFalse();
            assertThat(f.client().isOpen()).isTrue();

            f.pair.advanceTimeBy(1, TimeUnit.MILLISECONDS);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TIMED_OUT, LOCAL, SHUT_WR);
            assertThat(event.cause()).isInstanceOf(TimeoutException.class);
            assertThat(event.elapsed()).isEqualTo(HALF_CLOSE_TIMEOUT);
            assertCompletedWith(bye, byeCompletions, event);
            assertThat(f.client().isOpen()).as("not clean: the channel is closed").isFalse();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void halfCloseTimeoutZeroSchedulesNoTimerAndWaitsForever(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_WR);
            assertThat(f.client().runScheduledPendingTasks()).as("no timer").isEqualTo(-1);
            byte[] closeNotify = f.pair.drainOutbound(Side.CLIENT);

            f.pair.advanceTimeBy(1, TimeUnit.HOURS);

            assertThat(bye.isDone()).isFalse();
            assertNoEvent(f.clientApp());
            assertThat(f.client().isOpen()).isTrue();

            f.pair.deliver(Side.SERVER, closeNotify);
            f.pair.forward(Side.SERVER);

            TlsCloseEvent event = onlyEvent(f.clientApp());
            assertEvent(event, CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_WR);
            assertThat(event.elapsed()).isEqualTo(Duration.ofHours(1));
            assertThat(bye.getNow()).isSameAs(event);
            assertOnlyApp(f.client());
            assertThat(f.client().runScheduledPendingTasks()).isEqualTo(-1);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void readTimerIsCancelledOnceThePeersCloseNotifyArrives(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);
            assertThat(f.client().runScheduledPendingTasks()).as("the default read timeout, 3 s")
                    .isEqualTo(TimeUnit.MILLISECONDS.toNanos(
                            GracefulTlsCloseHandler.DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS));
            f.pair.forward(Side.CLIENT);
            f.pair.advanceTimeBy(2999, TimeUnit.MILLISECONDS);
            f.pair.forward(Side.SERVER);

            assertThat(bye.getNow().status()).isEqualTo(CLOSE_NOTIFY_RECEIVED);
            assertThat(bye.getNow().elapsed()).isEqualTo(Duration.ofMillis(2999));
            assertThat(f.client().isOpen()).isTrue();
            assertThat(f.client().runScheduledPendingTasks()).as("timer cancelled").isEqualTo(-1);
            f.pair.advanceTimeBy(1, TimeUnit.MINUTES);
            assertThat(onlyEvent(f.clientApp())).isSameAs(bye.getNow());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void idleChannelsHaveNothingScheduled(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            assertThat(f.client().runScheduledPendingTasks()).isEqualTo(-1);
            assertThat(f.server().runScheduledPendingTasks()).isEqualTo(-1);

            // Data flowing does not schedule anything either.
            f.client().writeAndFlush(buf(f.client(), ascii("ping")));
            f.server().writeAndFlush(buf(f.server(), ascii("pong")));
            f.pair.pump();

            assertThat(f.client().runScheduledPendingTasks()).isEqualTo(-1);
            assertThat(f.server().runScheduledPendingTasks()).isEqualTo(-1);
            assertThat(f.client().hasPendingTasks()).isFalse();
            assertThat(f.server().hasPendingTasks()).isFalse();
            assertThat(f.client().pipeline().toMap().values()).noneMatch(h -> h instanceof ClosingGuard);
            assertThat(f.clientHandler().closeFuture().isDone()).isFalse();
        }
    }

    /** How our side begins a clean closure of a {@link Fixture}'s client; returns its future. */
    private interface Closure {
        Future<TlsCloseEvent> begin(Fixture f);
    }

    static Stream<Arguments> cleanClosures() {
        return Tls.casesWithProvidersAndProtocols(
                named("close()", (Closure) f -> {
                    f.client().pipeline().close();
                    return f.clientHandler().closeFuture();
                }),
                named("bye(SHUT_RDWR)", (Closure) f -> f.clientHandler().bye(SHUT_RDWR)));
    }

    @ParameterizedTest(name = "{0}, {1} {2}")
    @MethodSource("cleanClosures")
    void timersAreCancelledAfterACleanClosure(Closure closure, SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            Future<TlsCloseEvent> closed = closure.begin(f);
            assertThat(f.client().runScheduledPendingTasks()).as("read timer while closing").isPositive();
            f.pair.pump();

            assertThat(closed.isSuccess()).isTrue();
            assertThat(closed.getNow().isClean()).isTrue();
            assertThat(onlyEvent(f.clientApp())).isSameAs(closed.getNow());
            assertThat(f.client().runScheduledPendingTasks()).as("client timers after").isEqualTo(-1);
            assertThat(f.server().runScheduledPendingTasks()).as("server timers after").isEqualTo(-1);
        }
    }

    /** Our close_notify is stuck below the SslHandler (a transport that cannot flush). */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeNotifyThatCannotBeFlushedTimesOutAtTheFlushTimeout(SslProvider provider, String protocol) {
        Stall stall = new Stall();
        GracefulTlsCloseHandler client = GracefulTlsCloseHandler.builder()
                .closeNotifyFlushTimeout(FLUSH_TIMEOUT).closeNotifyReadTimeout(READ_TIMEOUT).build();
        try (Fixture f = Fixture.withClientStall(provider, protocol, client, new GracefulTlsCloseHandler(), stall)
                .handshake()) {
            stall.stall();
            ChannelFuture closed = f.client().pipeline().close();
            AtomicInteger closeCompletions = completions(closed);
            assertThat(stall.heldWrites()).isPositive();
            assertThat(f.client().runScheduledPendingTasks()).as("flush timer only").isEqualTo(FLUSH_TIMEOUT.toNanos());

            f.pair.advanceTimeBy(FLUSH_TIMEOUT.toMillis() - 1, TimeUnit.MILLISECONDS);
            assertNoEvent(f.clientApp());
            assertThat(f.client().isOpen()).isTrue();

            f.pair.advanceTimeBy(1, TimeUnit.MILLISECONDS);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TIMED_OUT, LOCAL, SHUT_RDWR);
            assertThat(event.cause()).isInstanceOf(TimeoutException.class).hasMessageContaining("flush");
            assertThat(event.elapsed()).isEqualTo(FLUSH_TIMEOUT);
            assertThat(f.client().isOpen()).isFalse();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(closeCompletions).hasValue(1);
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);
        }
    }

    /**
     * Application data without the peer's close_notify keeps us waiting (OpenSSL's engine reports CLOSED for any input
     * once our close_notify is out: that must not pass for the peer's close_notify); it is discarded and counted in
     * the TIMED_OUT event.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void dataWithoutThePeersCloseNotifyIsDiscardedUntilTheReadTimeout(SslProvider provider, String protocol) {
        byte[] payload = randomBytes(20_000, 5);
        GracefulTlsCloseHandler client = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(READ_TIMEOUT).build();
        try (Fixture f = Fixture.of(provider, protocol, client, null).handshake()) {
            f.server().writeAndFlush(buf(f.server(), payload));
            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);

            f.pair.forward(Side.SERVER); // the data only

            assertNoEvent(f.clientApp());
            assertThat(bye.isDone()).as("still waiting for the peer's close_notify").isFalse();
            assertThat(f.clientApp().receivedBytes()).isEmpty();

            f.pair.advanceTimeBy(READ_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, TIMED_OUT, LOCAL, SHUT_RDWR);
            assertThat(event.discardedBytes()).isEqualTo(payload.length);
            assertThat(bye.getNow()).isSameAs(event);
            assertThat(f.client().isOpen()).isFalse();
        }
    }
}
