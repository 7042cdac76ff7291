package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link GracefulTlsCloseHandler.Builder}: the defaults, seen through a handler's behaviour on a frozen clock, and the
 * argument checks of the builder and of the handler's public methods.
 */
class BuilderTest {

    /** The two ways to get a handler with all defaults. */
    enum Defaults {
        CONSTRUCTOR(GracefulTlsCloseHandler::new),
        BUILDER(() -> GracefulTlsCloseHandler.builder().build());

        final Supplier<GracefulTlsCloseHandler> factory;

        Defaults(Supplier<GracefulTlsCloseHandler> factory) {
            this.factory = factory;
        }
    }

    // ---- defaults

    @Test
    void defaultConstantsAreThreeSeconds() {
        assertThat(GracefulTlsCloseHandler.DEFAULT_CLOSE_NOTIFY_FLUSH_TIMEOUT_MILLIS).isEqualTo(3000);
        assertThat(GracefulTlsCloseHandler.DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS).isEqualTo(3000);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Defaults.class)
    void defaultReadTimeoutIsThreeSeconds(Defaults defaults) {
        RecordingHandler recorder = new RecordingHandler();
        try (TlsPair pair = TlsPair.builder(Tls.Provider.JDK.sslProvider(), Tls.TLS_1_2)
                .clientHandlers(defaults.factory.get(), recorder)
                .build()) {
            pair.handshake();
            pair.freezeTime();
            EmbeddedChannel client = pair.client();

            // pipeline().close(): EmbeddedChannel.close() itself cancels every timer scheduled after it.
            ChannelFuture closed = client.pipeline().close(); // our close_notify is never forwarded: no reply
            client.advanceTimeBy(3000 * 1_000_000L - 1, TimeUnit.NANOSECONDS);
            client.runPendingTasks();
            assertThat(recorder.eventsOfType(TlsCloseEvent.class)).as("no outcome before 3 s").isEmpty();
            assertThat(closed.isDone()).as("close promise before 3 s").isFalse();
            assertThat(client.isOpen()).isTrue();

            client.advanceTimeBy(1, TimeUnit.NANOSECONDS);
            client.runPendingTasks();
            TlsCloseEvent event = single(recorder);
            assertThat(event.status()).isEqualTo(TlsCloseStatus.TIMED_OUT);
            assertThat(event.elapsed()).isEqualTo(Duration.ofSeconds(3));
            assertThat(event.cause()).hasMessageContaining("within 3.0s");
            assertThat(closed.isSuccess()).isTrue();
            assertThat(client.isOpen()).isFalse();
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Defaults.class)
    void defaultFlushTimeoutIsThreeSeconds(Defaults defaults) {
        RecordingHandler recorder = new RecordingHandler();
        WriteHolder holder = new WriteHolder();
        try (TlsPair pair = TlsPair.builder(Tls.Provider.JDK.sslProvider(), Tls.TLS_1_2)
                .client(p -> {
                    p.addFirst(holder); // below the SslHandler: its writes never reach the "wire"
                    p.addLast(defaults.factory.get(), recorder);
                })
                .build()) {
            pair.handshake();
            pair.freezeTime();
            EmbeddedChannel client = pair.client();
            holder.holding = true;

            ChannelFuture closed = client.pipeline().close(); // not client.close(): see above
            client.advanceTimeBy(3000 * 1_000_000L - 1, TimeUnit.NANOSECONDS);
            client.runPendingTasks();
            assertThat(recorder.eventsOfType(TlsCloseEvent.class)).as("no outcome before 3 s").isEmpty();

            client.advanceTimeBy(1, TimeUnit.NANOSECONDS);
            client.runPendingTasks();
            TlsCloseEvent event = single(recorder);
            assertThat(event.status()).isEqualTo(TlsCloseStatus.TIMED_OUT);
            assertThat(event.elapsed()).isEqualTo(Duration.ofSeconds(3));
            assertThat(event.cause()).hasMessageContaining("close_notify could not be flushed");

            // Let the held close_notify through, so that everything can conclude and be released.
            holder.release(client);
            pair.advanceTimeBy(1, TimeUnit.HOURS);
            assertThat(closed.isSuccess()).isTrue();
            assertThat(client.isOpen()).isFalse();
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Defaults.class)
    void defaultHalfCloseTimeoutIsNoDeadline(Defaults defaults) {
        RecordingHandler recorder = new RecordingHandler();
        try (TlsPair pair = TlsPair.builder(Tls.Provider.JDK.sslProvider(), Tls.TLS_1_2)
                .clientHandlers(defaults.factory.get(), recorder)
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build()) {
            pair.handshake();
            pair.freezeTime();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = client.pipeline().get(GracefulTlsCloseHandler.class);

            Future<TlsCloseEvent> bye = handler.bye(TlsCloseMode.SHUT_WR);
            assertThat(client.runScheduledPendingTasks()).as("no timer under SHUT_WR by default").isEqualTo(-1);
            client.advanceTimeBy(1, TimeUnit.DAYS);
            client.runPendingTasks();
            assertThat(bye.isDone()).isFalse();
            assertThat(recorder.eventsOfType(TlsCloseEvent.class)).isEmpty();

            pair.pump();
            assertThat(bye.isSuccess()).isTrue();
            assertThat(bye.getNow().status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Defaults.class)
    void defaultPeerClosePolicyClosesTheChannel(Defaults defaults) {
        RecordingHandler recorder = new RecordingHandler();
        try (TlsPair pair = TlsPair.builder(Tls.Provider.JDK.sslProvider(), Tls.TLS_1_2)
                .clientHandlers(defaults.factory.get(), recorder)
                .build()) {
            pair.handshake();

            pair.serverSsl().closeOutbound();
            pair.pump();

            TlsCloseEvent event = single(recorder);
            assertThat(event.initiator()).isEqualTo(TlsCloseInitiator.PEER);
            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(pair.client().isOpen()).isFalse();
        }
    }

    @Test
    void hugeTimeoutsAreAcceptedAndDoNotFireEarly() {
        Duration huge = Duration.ofSeconds(Long.MAX_VALUE);
        RecordingHandler recorder = new RecordingHandler();
        try (TlsPair pair = TlsPair.builder(Tls.Provider.JDK.sslProvider(), Tls.TLS_1_2)
                .clientHandlers(GracefulTlsCloseHandler.builder()
                        .closeNotifyFlushTimeout(huge)
                        .closeNotifyReadTimeout(huge)
                        .halfCloseTimeout(huge)
                        .build(), recorder)
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build()) {
            pair.handshake();
            pair.freezeTime();

            ChannelFuture closed = pair.client().pipeline().close(); // not close(): it cancels the timers
            pair.advanceTimeBy(365, TimeUnit.DAYS);
            assertThat(recorder.eventsOfType(TlsCloseEvent.class)).isEmpty();

            pair.pump();
            assertThat(single(recorder).status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(closed.isSuccess()).isTrue();
        }
    }

    // ---- argument checks

    @Test
    void nullArgumentsFailNamingTheArgument() {
        GracefulTlsCloseHandler.Builder b = GracefulTlsCloseHandler.builder();
        assertThatThrownBy(() -> b.closeNotifyFlushTimeout(null))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("closeNotifyFlushTimeout");
        assertThatThrownBy(() -> b.closeNotifyReadTimeout(null))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("closeNotifyReadTimeout");
        assertThatThrownBy(() -> b.halfCloseTimeout(null))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("halfCloseTimeout");
        assertThatThrownBy(() -> b.peerClosePolicy(null))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("peerClosePolicy");
    }

    @Test
    void zeroOrNegativeFlushTimeoutIsRejected() {
        for (Duration d : List.of(Duration.ZERO, Duration.ofNanos(-1), Duration.ofSeconds(-3))) {
            assertThatThrownBy(() -> GracefulTlsCloseHandler.builder().closeNotifyFlushTimeout(d))
                    .as(d.toString())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("closeNotifyFlushTimeout")
                    .hasMessageContaining("expected");
        }
    }

    @Test
    void zeroOrNegativeReadTimeoutIsRejected() {
        for (Duration d : List.of(Duration.ZERO, Duration.ofNanos(-1), Duration.ofSeconds(-3))) {
            assertThatThrownBy(() -> GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(d))
                    .as(d.toString())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("closeNotifyReadTimeout")
                    .hasMessageContaining("expected");
        }
    }

    @Test
    void negativeHalfCloseTimeoutIsRejected() {
        for (Duration d : List.of(Duration.ofNanos(-1), Duration.ofSeconds(-3))) {
            assertThatThrownBy(() -> GracefulTlsCloseHandler.builder().halfCloseTimeout(d))
                    .as(d.toString())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("halfCloseTimeout")
                    .hasMessageContaining("expected");
        }
    }

    @Test
    void zeroHalfCloseTimeoutIsAccepted() {
        GracefulTlsCloseHandler.Builder b = GracefulTlsCloseHandler.builder();
        assertThat(b.halfCloseTimeout(Duration.ZERO)).isSameAs(b);
        assertThat(b.build()).isNotNull();
    }

    @Test
    void positiveValuesAreAcceptedAndTheBuilderChains() {
        GracefulTlsCloseHandler.Builder b = GracefulTlsCloseHandler.builder();
        assertThat(b.closeNotifyFlushTimeout(Duration.ofNanos(1))).isSameAs(b);
        assertThat(b.closeNotifyReadTimeout(Duration.ofMillis(1))).isSameAs(b);
        assertThat(b.halfCloseTimeout(Duration.ofSeconds(1))).isSameAs(b);
        for (PeerClosePolicy policy : PeerClosePolicy.values()) {
            assertThat(b.peerClosePolicy(policy)).isSameAs(b);
        }
        // One builder, several handlers: one per channel.
        assertThat(b.build()).isNotSameAs(b.build());
    }

    /** Handlers built alike share their settings; a later change of the builder does not reach them. */
    @Test
    void handlerKeepsTheSettingsItWasBuiltWithWhenTheBuilderChangesLater() {
        GracefulTlsCloseHandler.Builder b = GracefulTlsCloseHandler.builder()
                .closeNotifyReadTimeout(Duration.ofMillis(100));
        GracefulTlsCloseHandler first = b.build();
        GracefulTlsCloseHandler second = b.build();
        b.closeNotifyReadTimeout(Duration.ofMillis(200));
        GracefulTlsCloseHandler third = b.build();

        assertThat(readTimeoutMillis(first)).isEqualTo(100);
        assertThat(readTimeoutMillis(second)).isEqualTo(100);
        assertThat(readTimeoutMillis(third)).isEqualTo(200);
    }

    /** The read timeout of a handler, measured on a frozen clock: the peer never answers our close_notify. */
    private static long readTimeoutMillis(GracefulTlsCloseHandler handler) {
        RecordingHandler recorder = new RecordingHandler();
        try (TlsPair pair = TlsPair.builder(Tls.Provider.JDK.sslProvider(), Tls.TLS_1_2)
                .clientHandlers(handler, recorder)
                .build()) {
            pair.handshake();
            pair.freezeTime();
            EmbeddedChannel client = pair.client();
            client.pipeline().close();
            for (int ms = 1; ms <= 1000; ms++) {
                client.advanceTimeBy(1, TimeUnit.MILLISECONDS);
                client.runPendingTasks();
                if (!recorder.eventsOfType(TlsCloseEvent.class).isEmpty()) {
                    TlsCloseEvent event = single(recorder);
                    assertThat(event.status()).isEqualTo(TlsCloseStatus.TIMED_OUT);
                    return event.elapsed().toMillis();
                }
            }
            throw new AssertionError("no outcome within 1 s");
        }
    }

    @Test
    void rejectedValueLeavesTheBuilderUsable() {
        GracefulTlsCloseHandler.Builder b = GracefulTlsCloseHandler.builder();
        assertThatThrownBy(() -> b.closeNotifyReadTimeout(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatCode(b::build).doesNotThrowAnyException();
    }

    @Test
    void byeNullFailsNamingHow() {
        GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        assertThatThrownBy(() -> handler.bye(null))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("how");
    }

    @Test
    void staticShutdownOutputNullFailsNamingChannel() {
        assertThatThrownBy(() -> GracefulTlsCloseHandler.shutdownOutput(null))
                .isInstanceOf(NullPointerException.class).hasMessageContaining("channel");
    }

    // ---- helpers

    private static TlsCloseEvent single(RecordingHandler recorder) {
        List<TlsCloseEvent> events = recorder.eventsOfType(TlsCloseEvent.class);
        assertThat(events).as("TlsCloseEvents").hasSize(1);
        return events.get(0);
    }

    /** Holds writes (while {@link #holding}) instead of passing them on, as a transport that cannot flush. */
    private static final class WriteHolder extends ChannelOutboundHandlerAdapter {
        volatile boolean holding;
        private final List<Object> messages = new ArrayList<>();
        private final List<ChannelPromise> promises = new ArrayList<>();
        private ChannelHandlerContext ctx;

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            if (holding) {
                messages.add(msg);
                promises.add(promise);
            } else {
                ctx.write(msg, promise);
            }
        }

        @Override
        public void flush(ChannelHandlerContext ctx) {
            if (!holding) {
                ctx.flush();
            }
        }

        /** Passes the held writes on (or releases them if the channel is gone) and stops holding. */
        void release(EmbeddedChannel channel) {
            holding = false;
            for (int i = 0; i < messages.size(); i++) {
                if (channel.isOpen()) {
                    ctx.write(messages.get(i), promises.get(i));
                } else {
                    ReferenceCountUtil.release(messages.get(i));
                    promises.get(i).tryFailure(new IllegalStateException("closed"));
                }
            }
            messages.clear();
            promises.clear();
            ctx.flush();
        }
    }
}
