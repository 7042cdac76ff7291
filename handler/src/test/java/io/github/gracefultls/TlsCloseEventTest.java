package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TlsPair;
import io.netty.buffer.ByteBuf;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link TlsCloseEvent}: its {@code toString()} shape, {@code isClean()}, and {@code cause()} of clean and unclean
 * outcomes, on events fired by real closures with a frozen clock.
 */
class TlsCloseEventTest {

    private static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void cleanLocalCloseReadsLikeTheStyleGuideExample(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlersOnBothSides(provider, protocol)) {
            pair.handshake();
            pair.freezeTime();

            pair.client().close();
            pair.client().advanceTimeBy(1200, TimeUnit.MICROSECONDS);
            pair.pump();

            TlsCloseEvent local = single(pair.clientRecorder());
            assertThat(local.elapsed()).isEqualTo(Duration.ofNanos(1_200_000));
            assertThat(local).hasToString("TlsCloseEvent(CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR, 1.2ms)");
            assertThat(local.isClean()).isTrue();
            assertThat(local.cause()).isNull();
            assertThat(local.discardedBytes()).isZero();

            TlsCloseEvent peer = single(pair.serverRecorder());
            assertThat(peer.initiator()).isEqualTo(TlsCloseInitiator.PEER);
            assertThat(peer.mode()).isNull();
            assertThat(peer.elapsed()).isEqualTo(Duration.ZERO);
            assertThat(peer.isClean()).isTrue();
            assertThat(peer.cause()).isNull();
            assertThat(peer.toString()).matches("TlsCloseEvent\\(CLOSE_NOTIFY_RECEIVED, PEER, [^,]+, [0-9.]+(us|ms|s)\\)");
        }
    }

    @Test
    void timedOutEventCarriesItsCauseInToString() {
        try (TlsPair pair = pairWithHandlersOnBothSides(SslProvider.JDK, "TLSv1.2")) {
            pair.handshake();
            pair.freezeTime();

            // Never forwarded. pipeline().close(): EmbeddedChannel.close() cancels every timer scheduled after it.
            pair.client().pipeline().close();
            pair.advanceTimeBy(3, TimeUnit.SECONDS);

            TlsCloseEvent event = single(pair.clientRecorder());
            assertThat(event.status()).isEqualTo(TlsCloseStatus.TIMED_OUT);
            assertThat(event.isClean()).isFalse();
            assertThat(event.cause()).isInstanceOf(TimeoutException.class);
            assertThat(event.elapsed()).isEqualTo(Duration.ofSeconds(3));
            assertThat(event.toString())
                    .startsWith("TlsCloseEvent(TIMED_OUT, LOCAL, SHUT_RDWR, ")
                    .contains("TimeoutException")
                    .contains(event.cause().getMessage())
                    .endsWith(")");
        }
    }

    @Test
    void discardedBytesAreCountedAndShown() {
        try (TlsPair pair = pairWithHandlersOnBothSides(SslProvider.JDK, "TLSv1.2")) {
            pair.handshake();
            pair.freezeTime();
            EmbeddedChannel server = pair.server();

            pair.client().close(); // our close_notify waits in the client's outbound queue
            ByteBuf data = server.alloc().buffer().writeBytes("12345".getBytes(StandardCharsets.US_ASCII));
            server.writeAndFlush(data);
            pair.forward(TlsPair.Side.SERVER); // reaches the client while it waits: released unread
            pair.pump();

            TlsCloseEvent event = single(pair.clientRecorder());
            assertThat(event.isClean()).isTrue();
            assertThat(event.discardedBytes()).isEqualTo(5);
            assertThat(pair.clientRecorder().receivedBytes()).isEmpty();
            assertThat(event.toString())
                    .startsWith("TlsCloseEvent(CLOSE_NOTIFY_RECEIVED, LOCAL, SHUT_RDWR, ")
                    .contains("5");
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(TlsCloseStatus.class)
    void isCleanIffCloseNotifyReceived(TlsCloseStatus status) {
        Throwable cause = status == TlsCloseStatus.CLOSE_NOTIFY_RECEIVED ? null : new Exception("x");
        TlsCloseEvent event = new TlsCloseEvent(status, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR,
                Duration.ofMillis(5).toNanos(), cause, 0, MessageState.UNMARKED);
        assertThat(event.isClean()).isEqualTo(status == TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        assertThat(event.status()).isSameAs(status);
        assertThat(event.toString()).startsWith("TlsCloseEvent(" + status.name() + ", LOCAL, SHUT_RDWR, 5.0ms");
    }

    @Test
    void elapsedIsFormattedInReadableUnits() {
        assertThat(eventWithElapsed(Duration.ofNanos(850_000)).toString()).contains(", 850us)");
        assertThat(eventWithElapsed(Duration.ofNanos(1_200_000)).toString()).contains(", 1.2ms)");
        assertThat(eventWithElapsed(Duration.ofMillis(2500)).toString()).contains(", 2.5s)");
        assertThat(eventWithElapsed(Duration.ofSeconds(60)).toString()).contains(", 60.0s)");
    }

    @ParameterizedTest(name = "{0} ns -> {1}")
    @CsvSource({
            "0, 0us",
            "499, 0us",
            "500, 1us",
            "1_499, 1us",
            "1_500, 2us",
            "999_499, 999us",
            // microseconds that round up to 1000 are shown in milliseconds
            "999_500, 1.0ms",
            "999_999, 1.0ms",
            "1_000_000, 1.0ms",
            "1_049_999, 1.0ms",
            "1_050_000, 1.1ms",
            "13_940_000, 13.9ms",
            "13_949_999, 13.9ms",
            "13_950_000, 14.0ms",
            "13_960_000, 14.0ms",
            "999_949_999, 999.9ms",
            // tenths of a millisecond that round up to 1000.0 ms are shown in seconds
            "999_950_000, 1.0s",
            "1_000_000_000, 1.0s",
            "1_049_999_999, 1.0s",
            "1_050_000_000, 1.1s",
            "2_449_999_999, 2.4s",
            "2_450_000_000, 2.5s",
            "59_999_999_999, 60.0s",
            "3_600_000_000_000, 3600.0s",
    })
    void elapsedIsRoundedHalfUpNotCut(String nanos, String shown) {
        Duration elapsed = Duration.ofNanos(Long.parseLong(nanos.replace("_", "")));
        assertThat(eventWithElapsed(elapsed).toString()).endsWith(", " + shown + ")");
        assertThat(Durations.format(elapsed.toNanos())).isEqualTo(shown);
        assertThat(Durations.format(elapsed)).isEqualTo(shown);
    }

    @Test
    void durationsBeyondLongNanosAndNegativeOnesAreShown() {
        assertThat(Durations.format(-1_500_000L)).isEqualTo("-1.5ms");
        assertThat(Durations.format(Long.MIN_VALUE)).isEqualTo("-9223372036.9s");
        assertThat(Durations.format(Duration.ofSeconds(10_000_000_000L, 50_000_000))).isEqualTo("10000000000.1s");
        assertThat(Durations.format(Duration.ofSeconds(10_000_000_000L, 49_999_999))).isEqualTo("10000000000.0s");
    }

    // ---- helpers

    private static TlsCloseEvent eventWithElapsed(Duration elapsed) {
        return new TlsCloseEvent(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL,
                TlsCloseMode.SHUT_WR, elapsed.toNanos(), null, 0, MessageState.UNMARKED);
    }

    static TlsPair pairWithHandlersOnBothSides(SslProvider provider, String protocol) {
        return TlsPair.builder(provider, protocol)
                .clientHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build();
    }

    private static TlsCloseEvent single(RecordingHandler recorder) {
        List<TlsCloseEvent> events = recorder.eventsOfType(TlsCloseEvent.class);
        assertThat(events).as("TlsCloseEvents").hasSize(1);
        return events.get(0);
    }
}
