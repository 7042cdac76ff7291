package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.github.gracefultls.testing.TlsRecords;
import io.github.gracefultls.testing.TlsRecords.Record;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;

import java.nio.channels.ClosedChannelException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Shared fixture of the {@code *PairTest}s: a {@link TlsPair} whose sides have the pipeline of the SPEC
 * ({@code "ssl"}, optionally {@code "tls-close"}, then {@code "app"}, a {@link RecordingHandler}), and assertions on
 * {@link TlsCloseEvent}s.
 */
final class PairTestSupport {

    static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";

    private PairTestSupport() {
    }

    /**
     * The one engine that treats a received close_notify as a half-close (RFC 8446 §6.1): it does not reply by
     * itself and can still write. Every other combination replies at once and can no longer write.
     */
    static boolean isTrueHalfClose(SslProvider provider, String protocol) {
        return provider == SslProvider.JDK && Tls.TLS_1_3.equals(protocol);
    }

    static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    static byte[] randomBytes(int length, long seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }

    static ByteBuf buf(EmbeddedChannel ch, byte[] bytes) {
        return ch.alloc().buffer(bytes.length).writeBytes(bytes);
    }

    /** A {@link TlsPair} with a {@link GracefulTlsCloseHandler} and a {@link RecordingHandler} on each side. */
    static TlsPair pairWithHandlers(SslProvider provider, String protocol) {
        return TlsPair.builder(provider, protocol)
                .clientHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build();
    }

    /** The channel's {@link GracefulTlsCloseHandler}; fails if there is none. */
    static GracefulTlsCloseHandler handlerOf(Channel channel) {
        GracefulTlsCloseHandler handler = channel.pipeline().get(GracefulTlsCloseHandler.class);
        assertThat(handler).as("GracefulTlsCloseHandler in " + channel.pipeline().names()).isNotNull();
        return handler;
    }

    static ByteBuf buffer(Channel channel, String s) {
        return channel.alloc().buffer().writeBytes(s.getBytes(StandardCharsets.US_ASCII));
    }

    /** Handler names of the pipeline, head and tail excluded. */
    static List<String> names(EmbeddedChannel ch) {
        return new ArrayList<>(ch.pipeline().toMap().keySet());
    }

    /** The only {@link TlsCloseEvent} the recorder saw; fails if there is none or more than one. */
    static TlsCloseEvent onlyEvent(RecordingHandler app) {
        List<TlsCloseEvent> events = app.eventsOfType(TlsCloseEvent.class);
        assertThat(events).as("TlsCloseEvents in " + app.timeline()).hasSize(1);
        return events.get(0);
    }

    static void assertNoEvent(RecordingHandler app) {
        assertThat(app.eventsOfType(TlsCloseEvent.class)).as("TlsCloseEvents in " + app.timeline()).isEmpty();
    }

    /** Exactly one event, and strictly before channelInactive if the channel became inactive. */
    static TlsCloseEvent assertOneEventBeforeInactive(RecordingHandler app) {
        TlsCloseEvent event = onlyEvent(app);
        List<Object> timeline = app.timeline();
        int inactive = timeline.indexOf(RecordingHandler.Marker.CHANNEL_INACTIVE);
        if (inactive >= 0) {
            assertThat(timeline.indexOf(event)).as("TlsCloseEvent before channelInactive in " + timeline)
                    .isLessThan(inactive);
            assertThat(timeline.lastIndexOf(RecordingHandler.Marker.CHANNEL_INACTIVE)).isEqualTo(inactive);
        }
        return event;
    }

    static void assertEvent(TlsCloseEvent e, TlsCloseStatus status, TlsCloseInitiator initiator, TlsCloseMode mode) {
        assertThat(e.status()).as("status of " + e).isEqualTo(status);
        assertThat(e.isClean()).as("isClean of " + e).isEqualTo(status == TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        assertThat(e.initiator()).as("initiator of " + e).isEqualTo(initiator);
        assertThat(e.mode()).as("mode of " + e).isEqualTo(mode);
        if (e.isClean()) {
            assertThat(e.cause()).as("cause of " + e).isNull();
        } else {
            assertThat(e.cause()).as("cause of " + e).isNotNull();
        }
    }

    /** The peer began and we never called bye: CLOSE_NOTIFY_RECEIVED, PEER, no mode, zero elapsed, no cause. */
    static void assertCleanPeerEvent(TlsCloseEvent e) {
        assertEvent(e, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        assertThat(e.elapsed()).isEqualTo(Duration.ZERO);
        assertThat(e.discardedBytes()).isZero();
    }

    /** Counts the completions of a future (a listener is notified once per completion). */
    static AtomicInteger completions(Future<?> future) {
        AtomicInteger count = new AtomicInteger();
        future.addListener(f -> count.incrementAndGet());
        return count;
    }

    /** Asserts the future succeeded exactly once, with exactly this event instance. */
    static void assertCompletedWith(Future<TlsCloseEvent> future, AtomicInteger completions, TlsCloseEvent event) {
        assertThat(future.isSuccess()).as("future " + future).isTrue();
        assertThat(future.getNow()).isSameAs(event);
        assertThat(completions).as("completions of " + future).hasValue(1);
    }

    /** Index of the last {@link RecordingHandler.Read} in the timeline, or -1. */
    static int lastReadIndex(List<Object> timeline) {
        for (int i = timeline.size() - 1; i >= 0; i--) {
            if (timeline.get(i) instanceof RecordingHandler.Read) {
                return i;
            }
        }
        return -1;
    }

    /** Index of the first {@link RecordingHandler.Read} in the timeline, or -1. */
    static int firstReadIndex(List<Object> timeline) {
        for (int i = 0; i < timeline.size(); i++) {
            if (timeline.get(i) instanceof RecordingHandler.Read) {
                return i;
            }
        }
        return -1;
    }

    /** The end offset of the last complete TLS record in {@code bytes} (what follows is plaintext). */
    static int endOfRecords(byte[] bytes) {
        List<Record> records = TlsRecords.parseLenient(bytes).records();
        assertThat(records).as("TLS records").isNotEmpty();
        return records.get(records.size() - 1).end();
    }

    /**
     * A {@link TlsPair} whose sides have {@code "ssl"}, then {@code "tls-close"} when a handler is given, then
     * {@code "app"}. {@link #close()} closes channels still open underneath the pipeline (as if the transport went
     * away), checks the invariant "exactly one TlsCloseEvent before channelInactive" on every side whose handshake
     * succeeded with a handler, and releases everything.
     */
    static final class Fixture implements AutoCloseable {
        final TlsPair pair;
        private final GracefulTlsCloseHandler clientHandler;
        private final GracefulTlsCloseHandler serverHandler;
        private final RecordingHandler clientApp = new RecordingHandler();
        private final RecordingHandler serverApp = new RecordingHandler();
        private boolean eventExpected = true;

        private Fixture(SslProvider provider, String protocol, GracefulTlsCloseHandler clientHandler,
                        GracefulTlsCloseHandler serverHandler, Stall clientStall, boolean halfClosure) {
            this.clientHandler = clientHandler;
            this.serverHandler = serverHandler;
            pair = TlsPair.builder(provider, protocol)
                    .halfClosure(halfClosure)
                    .client(p -> init(p, clientHandler, clientApp, clientStall))
                    .server(p -> init(p, serverHandler, serverApp, null))
                    .build();
        }

        private static void init(ChannelPipeline p, GracefulTlsCloseHandler handler, RecordingHandler app,
                                 Stall stall) {
            if (stall != null) {
                p.addFirst("stall", stall);
            }
            if (handler != null) {
                p.addLast("tls-close", handler);
            }
            p.addLast("app", app);
        }

        /** Either handler may be null: that side then has a bare SslHandler. */
        static Fixture of(SslProvider provider, String protocol, GracefulTlsCloseHandler clientHandler,
                          GracefulTlsCloseHandler serverHandler) {
            return new Fixture(provider, protocol, clientHandler, serverHandler, null, false);
        }

        /**
         * Both channels report {@code ALLOW_HALF_CLOSURE}: a FIN reaches the pipeline as a
         * {@code ChannelInputShutdownEvent}, which tests fire themselves.
         */
        static Fixture halfClosing(SslProvider provider, String protocol, GracefulTlsCloseHandler clientHandler,
                                   GracefulTlsCloseHandler serverHandler) {
            return new Fixture(provider, protocol, clientHandler, serverHandler, null, true);
        }

        /** The client has a {@link Stall} first in its pipeline, below the SslHandler. */
        static Fixture withClientStall(SslProvider provider, String protocol, GracefulTlsCloseHandler clientHandler,
                                       GracefulTlsCloseHandler serverHandler, Stall stall) {
            return new Fixture(provider, protocol, clientHandler, serverHandler, stall, false);
        }

        /**
         * The handler was removed before any closure: no TlsCloseEvent can come, and {@link #close()} checks that
         * none did instead of the invariant.
         */
        void handlerRemovedBeforeAnyClosure() {
            eventExpected = false;
        }

        /** Handshakes and freezes both clocks. */
        Fixture handshake() {
            pair.handshake();
            pair.freezeTime();
            return this;
        }

        EmbeddedChannel client() {
            return pair.client();
        }

        EmbeddedChannel server() {
            return pair.server();
        }

        EmbeddedChannel channel(Side side) {
            return pair.channel(side);
        }

        GracefulTlsCloseHandler clientHandler() {
            return clientHandler;
        }

        GracefulTlsCloseHandler serverHandler() {
            return serverHandler;
        }

        GracefulTlsCloseHandler handler(Side side) {
            return side == Side.CLIENT ? clientHandler : serverHandler;
        }

        RecordingHandler clientApp() {
            return clientApp;
        }

        RecordingHandler serverApp() {
            return serverApp;
        }

        RecordingHandler app(Side side) {
            return side == Side.CLIENT ? clientApp : serverApp;
        }

        @Override
        public void close() {
            AssertionError invariant = null;
            try {
                for (Side side : Side.values()) {
                    EmbeddedChannel ch = pair.channel(side);
                    if (ch.isOpen()) {
                        ch.unsafe().close(ch.unsafe().voidPromise());
                        ch.runPendingTasks();
                    }
                }
                for (Side side : Side.values()) {
                    if (handler(side) != null && pair.sslHandler(side).handshakeFuture().isSuccess()) {
                        try {
                            if (side == Side.CLIENT && !eventExpected) {
                                assertNoEvent(app(side));
                                continue;
                            }
                            assertOneEventBeforeInactive(app(side));
                        } catch (AssertionError e) {
                            AssertionError wrapped = new AssertionError("after the test, " + side + ": "
                                    + e.getMessage(), e);
                            if (invariant == null) {
                                invariant = wrapped;
                            } else {
                                invariant.addSuppressed(wrapped);
                            }
                        }
                    }
                }
            } finally {
                pair.close();
            }
            if (invariant != null) {
                throw invariant;
            }
        }
    }

    /**
     * An outbound handler below the SslHandler that, once {@link #stall()}ed, holds writes without completing them
     * (a transport that cannot flush), or fails them ({@link #failWrites()}). Held writes are released when the
     * channel closes.
     */
    static final class Stall extends ChannelDuplexHandler {
        private final Queue<Object> held = new ArrayDeque<>();
        private final Queue<ChannelPromise> promises = new ArrayDeque<>();
        private ChannelHandlerContext ctx;
        private boolean stalled;
        private Throwable failure;

        void stall() {
            stalled = true;
        }

        void failWrites(Throwable cause) {
            failure = cause;
        }

        /** Stops stalling: the held writes go on, in order, and are flushed. */
        void resume() {
            stalled = false;
            while (!held.isEmpty()) {
                ctx.write(held.poll(), promises.poll());
            }
            ctx.flush();
        }

        /** Fails the held writes with {@code cause}, and every later one. */
        void failHeld(Throwable cause) {
            failure = cause;
            for (;;) {
                Object msg = held.poll();
                if (msg == null) {
                    return;
                }
                ReferenceCountUtil.release(msg);
                promises.poll().tryFailure(cause);
            }
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        int heldWrites() {
            return held.size();
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            if (failure != null) {
                ReferenceCountUtil.release(msg);
                promise.tryFailure(failure);
            } else if (stalled) {
                held.add(msg);
                promises.add(promise);
            } else {
                ctx.write(msg, promise);
            }
        }

        @Override
        public void close(ChannelHandlerContext ctx, ChannelPromise promise) {
            releaseHeld();
            ctx.close(promise);
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            releaseHeld();
        }

        private void releaseHeld() {
            for (;;) {
                Object msg = held.poll();
                if (msg == null) {
                    return;
                }
                ReferenceCountUtil.release(msg);
                promises.poll().tryFailure(new ClosedChannelException());
            }
        }
    }
}
