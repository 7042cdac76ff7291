package io.github.gracefultls.micrometer;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MockClock;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleConfig;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;
import static org.assertj.core.api.Assertions.assertThatNullPointerException;
import static org.assertj.core.api.Assertions.entry;

/**
 * {@link TlsCloseMetrics} in a real registry, fed by real closures between two {@link TlsPair} sides, each with its
 * own metrics (tagged {@code side}) after its {@link GracefulTlsCloseHandler}: every series exists at zero once
 * bound, each closure counts in exactly the series of its status, initiator and message state, and the timer holds
 * the elapsed time of the closures this side began, on a frozen clock.
 */
class TlsCloseMetricsTest {

    private static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";
    private static final byte[] PAYLOAD = new byte[3_000];

    /** The registry's own clock (for the timer's max), still: nothing here depends on the wall clock. */
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry(SimpleConfig.DEFAULT, new MockClock());
    private final TlsCloseMetrics clientMetrics = TlsCloseMetrics.builder().tag("side", "client").build();
    private final TlsCloseMetrics serverMetrics = TlsCloseMetrics.builder().tag("side", "server").build();

    TlsCloseMetricsTest() {
        clientMetrics.bindTo(registry);
        serverMetrics.bindTo(registry);
    }

    @AfterEach
    void closeRegistry() {
        registry.close();
    }

    // ---- registration

    @Test
    void bindingRegistersEverySeriesAtZero() {
        SimpleMeterRegistry fresh = new SimpleMeterRegistry();
        TlsCloseMetrics metrics = TlsCloseMetrics.builder().tag("listener", "edge").build();

        metrics.bindTo(fresh);

        List<Counter> counters = new ArrayList<>(fresh.find("tls.close").counters());
        Set<List<String>> series = new HashSet<>();
        for (Counter counter : counters) {
            assertThat(counter.count()).as("%s", counter.getId()).isZero();
            assertThat(counter.getId().getTags()).extracting(Tag::getKey)
                    .containsExactlyInAnyOrder("initiator", "listener", "message", "status");
            assertThat(counter.getId().getTag("listener")).isEqualTo("edge");
            assertThat(counter.getId().getDescription()).isNotBlank();
            series.add(List.of(counter.getId().getTag("status"), counter.getId().getTag("initiator"),
                    counter.getId().getTag("message")));
        }
        Set<List<String>> expected = new HashSet<>();
        for (TlsCloseStatus status : TlsCloseStatus.values()) {
            for (TlsCloseInitiator initiator : TlsCloseInitiator.values()) {
                for (MessageState messageState : MessageState.values()) {
                    expected.add(List.of(status.name(), initiator.name(), messageState.name()));
                }
            }
        }
        assertThat(counters).hasSize(24);
        assertThat(series).isEqualTo(expected);

        List<Timer> timers = new ArrayList<>(fresh.find("tls.close.duration").timers());
        assertThat(timers).extracting(t -> t.getId().getTag("status"))
                .containsExactlyInAnyOrder("CLOSE_NOTIFY_RECEIVED", "TIMED_OUT", "TRUNCATED", "FAILED");
        assertThat(timers).allSatisfy(t -> {
            assertThat(t.count()).isZero();
            assertThat(t.getId().getTags()).extracting(Tag::getKey).containsExactlyInAnyOrder("listener", "status");
            assertThat(t.getId().getType()).isEqualTo(Meter.Type.TIMER);
        });
        assertThat(fresh.getMeters()).hasSize(28);
        fresh.close();
    }

    @Test
    void aPrefixNamesBothMeters() {
        SimpleMeterRegistry fresh = new SimpleMeterRegistry();
        TlsCloseMetrics metrics = TlsCloseMetrics.builder().prefix("gateway.upstream")
                .tags(Tags.of("a", "1", "b", "2")).tag("b", "3").build();

        metrics.bindTo(fresh);

        assertThat(metrics.closuresName()).isEqualTo("gateway.upstream.tls.close");
        assertThat(metrics.durationName()).isEqualTo("gateway.upstream.tls.close.duration");
        assertThat(fresh.find("gateway.upstream.tls.close").counters()).hasSize(24);
        assertThat(fresh.find("gateway.upstream.tls.close.duration").timers()).hasSize(4);
        assertThat(fresh.find("tls.close").meters()).isEmpty();
        assertThat(fresh.getMeters()).allSatisfy(m -> {
            assertThat(m.getId().getTag("a")).isEqualTo("1");
            assertThat(m.getId().getTag("b")).as("the last value of a key given twice").isEqualTo("3");
        });
        assertThat(new TlsCloseMetrics().closuresName()).isEqualTo(TlsCloseMetrics.CLOSURES);
        assertThat(new TlsCloseMetrics().durationName()).isEqualTo(TlsCloseMetrics.DURATION);
        fresh.close();
    }

    @Test
    void badArgumentsFailAtOnceNamingTheArgument() {
        TlsCloseMetrics.Builder builder = TlsCloseMetrics.builder();
        for (String key : List.of("status", "initiator", "message")) {
            assertThatIllegalArgumentException().isThrownBy(() -> builder.tag(key, "x"))
                    .withMessage("tag: " + key + " (expected: a key other than status, initiator and message)");
            assertThatIllegalArgumentException().isThrownBy(() -> builder.tags(Tags.of("ok", "1", key, "x")));
        }
        for (String prefix : List.of("", ".edge", "edge.")) {
            assertThatIllegalArgumentException().isThrownBy(() -> builder.prefix(prefix))
                    .withMessage("prefix: \"" + prefix + "\" (expected: not empty, no leading or trailing dot)");
        }
        assertThatNullPointerException().isThrownBy(() -> builder.prefix(null)).withMessage("prefix");
        assertThatNullPointerException().isThrownBy(() -> builder.tags(null)).withMessage("tags");
        assertThatNullPointerException().isThrownBy(() -> builder.tag(null, "x")).withMessage("key");
        assertThatNullPointerException().isThrownBy(() -> builder.tag("k", null)).withMessage("value");
        assertThatNullPointerException().isThrownBy(() -> clientMetrics.bindTo(null)).withMessage("registry");
        assertThatNullPointerException().isThrownBy(() -> clientMetrics.record(null)).withMessage("event");

        // Nothing refused was kept.
        TlsCloseMetrics built = builder.build();
        SimpleMeterRegistry fresh = new SimpleMeterRegistry();
        built.bindTo(fresh);
        assertThat(fresh.getMeters()).allSatisfy(m -> assertThat(m.getId().getTag("ok")).isNull());
        assertThat(built.closuresName()).isEqualTo("tls.close");
        fresh.close();
    }

    // ---- counting real closures

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void aCleanLocalCloseCountsOnBothSidesAndIsTimedWhereItBegan(SslProvider provider, String protocol) {
        try (TlsPair pair = pair(provider, protocol, false)) {
            pair.handshake();
            pair.freezeTime();

            pair.client().close();
            pair.client().advanceTimeBy(1200, TimeUnit.MICROSECONDS);
            pair.pump();

            assertThat(nonZeroCounts("client")).containsExactly(entry("CLOSE_NOTIFY_RECEIVED LOCAL UNMARKED", 1.0));
            assertThat(nonZeroCounts("server")).containsExactly(entry("CLOSE_NOTIFY_RECEIVED PEER UNMARKED", 1.0));
            assertThat(timings("client")).containsExactly(entry("CLOSE_NOTIFY_RECEIVED", List.of(1L, 1_200_000L)));
            assertThat(timings("server")).as("a closure the peer began is not timed").isEmpty();

            // The metrics handler passes the event on, and every other user event with it.
            for (Side side : Side.values()) {
                RecordingHandler app = pair.recorder(side);
                assertThat(app.eventsOfType(TlsCloseEvent.class)).hasSize(1);
                assertThat(app.eventsOfType(SslHandshakeCompletionEvent.class)).hasSize(1);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void aTimeoutIsCountedAndTimedAtItsDeadline(SslProvider provider, String protocol) {
        try (TlsPair pair = pair(provider, protocol, false)) {
            pair.handshake();
            pair.freezeTime();

            // Our close_notify is never forwarded. pipeline().close(): EmbeddedChannel.close() cancels every timer
            // scheduled after it.
            pair.client().pipeline().close();
            pair.advanceTimeBy(3, TimeUnit.SECONDS);

            assertThat(nonZeroCounts("client")).containsExactly(entry("TIMED_OUT LOCAL UNMARKED", 1.0));
            assertThat(timings("client")).containsExactly(entry("TIMED_OUT", List.of(1L, 3_000_000_000L)));
            assertThat(nonZeroCounts("server")).isEmpty();
        }
    }

    /** Where the client's inbound message stood, and how the server ended the stream. */
    enum Ending {
        CUT_BY_FIN(true, false, End.FIN, "TRUNCATED PEER IN_MESSAGE", true),
        CUT_BY_RESET(true, false, End.RESET, "TRUNCATED PEER IN_MESSAGE", true),
        TRUNCATED_BETWEEN_MESSAGES(true, true, End.FIN, "TRUNCATED PEER BETWEEN_MESSAGES", false),
        TRUNCATED_UNMARKED(false, false, End.RESET, "TRUNCATED PEER UNMARKED", false),
        CLEAN_IN_MESSAGE(true, false, End.CLOSE_NOTIFY, "CLOSE_NOTIFY_RECEIVED PEER IN_MESSAGE", false);

        final boolean started;
        final boolean completed;
        final End end;
        final String series;
        final boolean cut;

        Ending(boolean started, boolean completed, End end, String series, boolean cut) {
            this.started = started;
            this.completed = completed;
            this.end = end;
            this.series = series;
            this.cut = cut;
        }
    }

    enum End { FIN, RESET, CLOSE_NOTIFY }

    static Stream<Arguments> endings() {
        return Tls.casesWithProvidersAndProtocols((Object[]) Ending.values());
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("endings")
    void theMessageTagSaysWhereTheStreamEnded(Ending ending, SslProvider provider, String protocol) {
        try (TlsPair pair = pair(provider, protocol, ending.end == End.FIN)) {
            pair.handshake();
            GracefulTlsCloseHandler clientHandler = pair.client().pipeline().get(GracefulTlsCloseHandler.class);
            if (ending.started) {
                clientHandler.messageStarted();
            }
            if (ending.completed) {
                clientHandler.messageCompleted();
            }

            EmbeddedChannel server = pair.server();
            server.writeAndFlush(server.alloc().buffer().writeBytes(PAYLOAD));
            end(pair, ending.end);

            TlsCloseEvent event = clientHandler.closeFuture().getNow();
            assertThat(event).as("the client's outcome").isNotNull();
            assertThat(event.isMessageCut()).isEqualTo(ending.cut);
            assertThat(event.isMessageCut()).as("isMessageCut() of %s, read from its tags", event)
                    .isEqualTo(event.messageState() == MessageState.IN_MESSAGE && !event.isClean());
            assertThat(nonZeroCounts("client")).containsExactly(entry(ending.series, 1.0));
            assertThat(timings("client")).isEmpty();
            // The server's side of the same connection: its own closure, unmarked.
            assertThat(nonZeroCounts("server")).hasSize(1)
                    .allSatisfy((series, count) -> assertThat(series).endsWith(" UNMARKED"));
        }
    }

    @Test
    void oneSharedHandlerCountsEveryChannel() {
        long[] cleanMicros = {1_000, 2_000, 4_000};
        for (long micros : cleanMicros) {
            try (TlsPair pair = pair(SslProvider.JDK, Tls.TLS_1_3, false)) {
                pair.handshake();
                pair.freezeTime();
                pair.client().close();
                pair.client().advanceTimeBy(micros, TimeUnit.MICROSECONDS);
                pair.pump();
            }
        }
        for (int i = 0; i < 2; i++) {
            try (TlsPair pair = pair(SslProvider.OPENSSL, Tls.TLS_1_2, false)) {
                pair.handshake();
                end(pair, End.RESET);
            }
        }
        try (TlsPair pair = pair(SslProvider.JDK, Tls.TLS_1_2, false)) {
            pair.handshake();
            pair.freezeTime();
            pair.client().pipeline().close();
            pair.advanceTimeBy(3, TimeUnit.SECONDS);
        }

        assertThat(nonZeroCounts("client")).containsExactly(
                entry("CLOSE_NOTIFY_RECEIVED LOCAL UNMARKED", 3.0),
                entry("TIMED_OUT LOCAL UNMARKED", 1.0),
                entry("TRUNCATED PEER UNMARKED", 2.0));
        assertThat(timings("client")).containsExactly(
                entry("CLOSE_NOTIFY_RECEIVED", List.of(3L, 7_000_000L)),
                entry("TIMED_OUT", List.of(1L, 3_000_000_000L)));
        Timer clean = registry.get("tls.close.duration").tags("side", "client", "status", "CLOSE_NOTIFY_RECEIVED")
                .timer();
        assertThat(clean.max(TimeUnit.NANOSECONDS)).isEqualTo(4_000_000.0);
    }

    @Test
    void recordTakesTheOutcomeFromTheFutureAndCountsOnceInEveryBoundRegistry() {
        SimpleMeterRegistry second = new SimpleMeterRegistry();
        SimpleMeterRegistry late = new SimpleMeterRegistry();
        TlsCloseMetrics metrics = TlsCloseMetrics.builder().tag("side", "future").build();
        metrics.bindTo(registry);
        metrics.bindTo(second);
        metrics.bindTo(registry); // again: changes nothing
        GracefulTlsCloseHandler clientHandler = new GracefulTlsCloseHandler();
        clientHandler.closeFuture().addListener(f -> {
            if (f.isSuccess()) {
                metrics.record((TlsCloseEvent) f.getNow());
            }
        });

        try (TlsPair pair = TlsPair.builder(SslProvider.JDK, Tls.TLS_1_3)
                .clientHandlers(clientHandler, new RecordingHandler())
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build()) {
            pair.handshake();
            pair.freezeTime();
            pair.client().close();
            pair.client().advanceTimeBy(5, TimeUnit.MILLISECONDS);
            pair.pump();
        }
        metrics.bindTo(late);

        assertThat(nonZeroCounts(registry, "future")).containsExactly(entry("CLOSE_NOTIFY_RECEIVED LOCAL UNMARKED", 1.0));
        assertThat(nonZeroCounts(second, "future")).containsExactly(entry("CLOSE_NOTIFY_RECEIVED LOCAL UNMARKED", 1.0));
        assertThat(timings(second, "future")).containsExactly(entry("CLOSE_NOTIFY_RECEIVED", List.of(1L, 5_000_000L)));
        assertThat(nonZeroCounts(late, "future")).as("bound after the closure").isEmpty();
        assertThat(late.find("tls.close").counters()).hasSize(24);
        second.close();
        late.close();
    }

    // ---- helpers

    /** A pair with the SPEC's pipeline on each side, then that side's metrics handler, then a recorder. */
    private TlsPair pair(SslProvider provider, String protocol, boolean halfClosure) {
        return TlsPair.builder(provider, protocol)
                .halfClosure(halfClosure)
                .clientHandlers(new GracefulTlsCloseHandler(), clientMetrics.handler(), new RecordingHandler())
                .serverHandlers(new GracefulTlsCloseHandler(), serverMetrics.handler(), new RecordingHandler())
                .build();
    }

    /** Ends the server's stream to the client: with its close_notify, or by dropping TCP without it. */
    private static void end(TlsPair pair, End end) {
        if (end == End.CLOSE_NOTIFY) {
            pair.server().close();
            pair.pump();
            return;
        }
        pair.forward(Side.SERVER);
        pair.server().pipeline().firstContext().close(); // below the SslHandler: no close_notify
        EmbeddedChannel client = pair.client();
        if (end == End.FIN) {
            client.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        } else {
            client.pipeline().firstContext().close();
        }
        client.runPendingTasks();
    }

    private Map<String, Double> nonZeroCounts(String side) {
        return nonZeroCounts(registry, side);
    }

    /** The counter series of {@code side} that are not zero, as "STATUS INITIATOR MESSAGE", sorted. */
    private static Map<String, Double> nonZeroCounts(MeterRegistry registry, String side) {
        Map<String, Double> counts = new TreeMap<>();
        for (Counter counter : registry.find("tls.close").tag("side", side).counters()) {
            if (counter.count() != 0) {
                Meter.Id id = counter.getId();
                counts.put(id.getTag("status") + " " + id.getTag("initiator") + " " + id.getTag("message"),
                        counter.count());
            }
        }
        return counts;
    }

    private Map<String, List<Long>> timings(String side) {
        return timings(registry, side);
    }

    /** The timer series of {@code side} that recorded something: status to [count, total nanoseconds], sorted. */
    private static Map<String, List<Long>> timings(MeterRegistry registry, String side) {
        Map<String, List<Long>> timings = new TreeMap<>();
        for (Timer timer : registry.find("tls.close.duration").tag("side", side).timers()) {
            if (timer.count() != 0) {
                timings.put(timer.getId().getTag("status"),
                        List.of(timer.count(), (long) timer.totalTime(TimeUnit.NANOSECONDS)));
            }
        }
        return timings;
    }
}
