package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelPipelineException;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Named.named;

/**
 * Misuse and awkward use of {@link GracefulTlsCloseHandler}: wrong pipelines, calls at the wrong time, repeated and
 * concurrent calls, writes after {@code close_notify}, handlers removed under its feet, and timers.
 */
class BadUseTest {

    private static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";
    private static final long AWAIT_SECONDS = 10;

    private static EventLoopGroup group;

    @BeforeAll
    @SuppressWarnings("deprecation") // NioEventLoopGroup serves NIO sockets on Netty 4.1 and 4.2
    static void startEventLoops() {
        group = new NioEventLoopGroup(2);
    }

    @AfterAll
    static void stopEventLoops() throws InterruptedException {
        assertThat(group.shutdownGracefully(0, 5, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS)).isTrue();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Wrong pipelines
    // ------------------------------------------------------------------------------------------------------------

    /** Pipelines where no SslHandler comes before ours: none at all, or one after it. */
    static Stream<Arguments> pipelinesWithoutAnSslHandlerBeforeOurs() {
        return Stream.concat(Stream.of(Arguments.of("without an SslHandler", null, null)),
                Tls.providersAndProtocols().map(a -> Arguments.of("before the " + a.get()[0] + " " + a.get()[1]
                        + " SslHandler", a.get()[0], a.get()[1])));
    }

    @ParameterizedTest(name = "added {0}")
    @MethodSource("pipelinesWithoutAnSslHandlerBeforeOurs")
    void addedWithoutAnSslHandlerBeforeItFailsAndLeavesThePipeline(String where, SslProvider provider,
                                                                   String protocol) {
        EmbeddedChannel ch = new EmbeddedChannel();
        try {
            List<String> before = new ArrayList<>();
            if (provider != null) {
                ch.pipeline().addLast("ssl", Tls.clientContext(provider, protocol).newHandler(ch.alloc()));
                before.add("ssl");
            }
            before.add("DefaultChannelPipeline$TailContext#0");
            GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
            ch.pipeline().addFirst("tls-close", handler);

            assertThatThrownBy(ch::checkException)
                    .isInstanceOf(ChannelPipelineException.class)
                    .cause()
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("SslHandler");
            assertThat(ch.pipeline().get(GracefulTlsCloseHandler.class)).isNull();
            assertThat(ch.pipeline().context(handler)).isNull();
            // Nothing of ours was left behind either.
            assertThat(ch.pipeline().names()).containsExactlyElementsOf(before);
        } finally {
            ch.finishAndReleaseAll();
        }
    }

    @Test
    void notSharable() {
        assertThat(new GracefulTlsCloseHandler().isSharable()).isFalse();
        assertThat(GracefulTlsCloseHandler.class.isAnnotationPresent(ChannelHandler.Sharable.class)).isFalse();
    }

    @Test
    void sameInstanceInTwoPipelinesIsRejected() {
        GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        try (TlsPair pair = TlsPair.builder(SslProvider.JDK, Tls.TLS_1_2)
                .clientHandlers(handler, new RecordingHandler())
                .build()) {
            EmbeddedChannel second = new EmbeddedChannel();
            try {
                second.pipeline().addLast("ssl", Tls.clientContext(SslProvider.JDK, Tls.TLS_1_2)
                        .newHandler(second.alloc()));
                assertThatThrownBy(() -> second.pipeline().addLast("tls-close", handler))
                        .isInstanceOf(ChannelPipelineException.class)
                        .hasMessageContaining("Sharable");
                assertThat(second.pipeline().get(GracefulTlsCloseHandler.class)).isNull();
            } finally {
                second.finishAndReleaseAll();
            }

            // The first channel is unaffected.
            pair.handshake();
            assertThat(pair.client().pipeline().get(GracefulTlsCloseHandler.class)).isSameAs(handler);
            ChannelFuture closed = pair.client().close();
            pair.pump();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(single(pair.clientRecorder()).status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Calls at the wrong time
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeAndShutdownOutputBeforeTheHandshakeFail(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            GracefulTlsCloseHandler handler = handler(pair.client());

            List<Future<TlsCloseEvent>> futures = List.of(
                    handler.bye(TlsCloseMode.SHUT_RDWR),
                    handler.bye(TlsCloseMode.SHUT_WR),
                    handler.shutdownOutput(),
                    GracefulTlsCloseHandler.shutdownOutput(pair.client()));
            for (Future<TlsCloseEvent> f : futures) {
                assertThat(f.isDone()).isTrue();
                assertThat(f.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("handshake");
            }
            // Nothing was started: the handshake still completes and a later closure is clean.
            assertThat(pair.hasPendingOutbound(Side.CLIENT)).isTrue(); // the ClientHello, no close_notify
            pair.handshake();
            assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).isEmpty();
            Future<TlsCloseEvent> bye = handler.bye(TlsCloseMode.SHUT_RDWR);
            pair.pump();
            assertThat(bye.isSuccess()).isTrue();
            assertThat(bye.getNow().status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeBeforeTheHandshakePassesThrough(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            GracefulTlsCloseHandler handler = handler(pair.client());
            Future<TlsCloseEvent> early = handler.closeFuture();

            ChannelFuture closed = pair.client().close();

            assertThat(closed.isSuccess()).isTrue();
            assertThat(pair.client().isOpen()).isFalse();
            assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).isEmpty();
            assertThat(early.isDone()).as("closeFuture() taken before the close").isTrue();
            assertThat(early.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("handshake");
            Future<TlsCloseEvent> late = handler.closeFuture();
            assertThat(late.isDone()).as("closeFuture() taken after the close").isTrue();
            assertThat(late.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("handshake");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeFutureFailsWhenTheHandshakeFails(SslProvider provider, String protocol) {
        // Each side speaks only the other protocol: the handshake fails.
        String other = Tls.TLS_1_2.equals(protocol) ? Tls.TLS_1_3 : Tls.TLS_1_2;
        try (TlsPair pair = TlsPair.builder(Tls.clientContext(provider, protocol), Tls.serverContext(provider, other))
                .clientHandlers(new GracefulTlsCloseHandler(), RecordingHandler.swallowingExceptions())
                .serverHandlers(new GracefulTlsCloseHandler(), RecordingHandler.swallowingExceptions())
                .build()) {
            GracefulTlsCloseHandler handler = handler(pair.client());
            Future<TlsCloseEvent> early = handler.closeFuture();

            pair.pump();

            assertThat(pair.clientSsl().handshakeFuture().isSuccess()).isFalse();
            assertThat(pair.clientSsl().handshakeFuture().isDone()).isTrue();
            for (Future<TlsCloseEvent> f : List.of(early, handler.closeFuture(), handler.bye(TlsCloseMode.SHUT_RDWR))) {
                assertThat(f.isDone()).isTrue();
                assertThat(f.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("handshake");
            }
            assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).isEmpty();
            assertThat(pair.serverRecorder().eventsOfType(TlsCloseEvent.class)).isEmpty();
        }
    }

    @Test
    void byeAndShutdownOutputOnAHandlerNeverAddedFail() {
        GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        for (Future<TlsCloseEvent> f : List.of(handler.bye(TlsCloseMode.SHUT_RDWR), handler.bye(TlsCloseMode.SHUT_WR),
                handler.shutdownOutput())) {
            assertThat(f.isDone()).isTrue();
            assertThat(f.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("pipeline");
        }
    }

    /**
     * A handler the application removed from its pipeline is "not in any pipeline" as much as one never added: the
     * call is invalid and must neither start a closure nor touch the channel it once belonged to.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeOnARemovedHandlerFailsAndLeavesTheChannelAlone(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            pair.freezeTime();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handler(client);
            client.pipeline().remove(handler);

            Future<TlsCloseEvent> bye = handler.bye(TlsCloseMode.SHUT_RDWR);

            SoftAssertions softly = new SoftAssertions();
            softly.assertThat(bye.isDone()).as("bye() future done at once").isTrue();
            softly.assertThat(bye.cause()).as("bye() failure").isInstanceOf(IllegalStateException.class);
            softly.assertThat(pair.pendingOutboundBytes(Side.CLIENT)).as("bytes (a close_notify) sent").isZero();
            softly.assertThat(client.runScheduledPendingTasks()).as("timer scheduled").isEqualTo(-1);
            pair.advanceTimeBy(1, TimeUnit.HOURS);
            softly.assertThat(client.isOpen()).as("channel still open an hour later").isTrue();
            softly.assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).as("TlsCloseEvents").isEmpty();
            softly.assertAll();
        }
    }

    @Test
    void staticShutdownOutputWithoutTheHandlerFails() {
        EmbeddedChannel ch = new EmbeddedChannel(new RecordingHandler());
        try {
            Future<TlsCloseEvent> f = GracefulTlsCloseHandler.shutdownOutput(ch);
            assertThat(f.isDone()).isTrue();
            assertThat(f.cause()).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(GracefulTlsCloseHandler.class.getSimpleName());
            assertThat(ch.isOpen()).isTrue();
        } finally {
            ch.finishAndReleaseAll();
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Repeated calls join
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void secondCloseJoinsTheFirst(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handler(client);

            ChannelFuture first = client.close();
            ChannelFuture second = client.close();
            assertThat(first.isDone()).isFalse();
            assertThat(second.isDone()).isFalse();
            pair.pump();

            assertThat(first.isSuccess()).isTrue();
            assertThat(second.isSuccess()).isTrue();
            assertThat(client.isOpen()).isFalse();
            TlsCloseEvent event = single(pair.clientRecorder());
            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(handler.closeFuture().getNow()).isSameAs(event);

            // A close() after the fact completes too.
            assertThat(client.close().isSuccess()).isTrue();
            assertThat(pair.clientRecorder().eventsOfType(TlsCloseEvent.class)).hasSize(1);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeAfterByeShutWrJoinsAndDiscards(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handler(client);

            Future<TlsCloseEvent> bye = handler.bye(TlsCloseMode.SHUT_WR);
            ChannelFuture closed = client.close();
            // Application data sent by the server before it sees our close_notify: discarded under SHUT_RDWR now.
            pair.server().writeAndFlush(buffer(pair.server(), "abc"));
            pair.forward(Side.SERVER);
            pair.pump();

            assertThat(bye.isSuccess()).isTrue();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(client.isOpen()).isFalse();
            TlsCloseEvent event = single(pair.clientRecorder());
            assertThat(bye.getNow()).isSameAs(event);
            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(event.mode()).isEqualTo(TlsCloseMode.SHUT_WR);
            assertThat(event.discardedBytes()).isEqualTo(3);
            assertThat(pair.clientRecorder().receivedBytes()).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeShutRdwrAfterShutdownOutputGetsTheSameEvent(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            GracefulTlsCloseHandler handler = handler(pair.client());

            Future<TlsCloseEvent> half = handler.shutdownOutput();
            Future<TlsCloseEvent> full = handler.bye(TlsCloseMode.SHUT_RDWR);
            assertThat(half.isDone()).isFalse();
            assertThat(full.isDone()).isFalse();
            pair.pump();

            assertThat(half.isSuccess()).isTrue();
            assertThat(full.isSuccess()).isTrue();
            assertThat(full.getNow()).isSameAs(half.getNow());
            assertThat(handler.closeFuture().getNow()).isSameAs(half.getNow());
            assertThat(single(pair.clientRecorder())).isSameAs(half.getNow());
            assertThat(half.getNow().status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Threads (real event loops: loopback sockets)
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeAndByeFromEightThreadsAtOnce(SslProvider provider, String protocol) throws Exception {
        try (TlsSockets sockets = sockets()) {
            TlsSockets.Client client = connect(sockets, provider, protocol);
            Channel channel = client.channel;
            GracefulTlsCloseHandler handler = client.handler;
            int threads = 8;
            CountDownLatch go = new CountDownLatch(1);
            List<ChannelFuture> closes = new CopyOnWriteArrayList<>();
            List<Future<TlsCloseEvent>> byes = new CopyOnWriteArrayList<>();
            List<Thread> started = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                Thread t = new Thread(() -> {
                    try {
                        go.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                    closes.add(channel.close());
                    byes.add(handler.bye(TlsCloseMode.SHUT_RDWR));
                }, "closer-" + i);
                t.start();
                started.add(t);
            }
            go.countDown();
            for (Thread t : started) {
                t.join(TimeUnit.SECONDS.toMillis(AWAIT_SECONDS));
                assertThat(t.isAlive()).as(t.getName() + " finished").isFalse();
            }

            assertThat(closes).hasSize(threads);
            assertThat(byes).hasSize(threads);
            for (ChannelFuture f : closes) {
                assertThat(f.await(AWAIT_SECONDS, TimeUnit.SECONDS)).as("close() promise completes").isTrue();
                assertThat(f.isSuccess()).as("close() promise succeeds: %s", f.cause()).isTrue();
            }
            Future<TlsCloseEvent> closeFuture = handler.closeFuture();
            assertThat(closeFuture.await(AWAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            TlsCloseEvent event = closeFuture.getNow();
            assertThat(event).isNotNull();
            for (Future<TlsCloseEvent> f : byes) {
                assertThat(f.await(AWAIT_SECONDS, TimeUnit.SECONDS)).as("bye() future completes").isTrue();
                assertThat(f.isSuccess()).as("bye() succeeds: %s", f.cause()).isTrue();
                assertThat(f.getNow()).isSameAs(event);
            }
            assertThat(channel.closeFuture().await(AWAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(channel.isOpen()).isFalse();
            client.rec.awaitInactive(Duration.ofSeconds(AWAIT_SECONDS));
            assertThat(client.rec.eventsOfType(TlsCloseEvent.class)).containsExactly(event);
            assertThat(event.initiator()).isEqualTo(TlsCloseInitiator.LOCAL);
            assertThat(event.status()).as("%s, cause %s", event, event.cause())
                    .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeFromAnotherThreadWorks(SslProvider provider, String protocol) throws Exception {
        try (TlsSockets sockets = sockets()) {
            TlsSockets.Client client = connect(sockets, provider, protocol);
            assertThat(client.channel.eventLoop().inEventLoop()).isFalse();

            Future<TlsCloseEvent> bye = client.handler.bye(TlsCloseMode.SHUT_RDWR);

            assertThat(bye.await(AWAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(bye.isSuccess()).as("bye() succeeds: %s", bye.cause()).isTrue();
            TlsCloseEvent event = bye.getNow();
            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(event.initiator()).isEqualTo(TlsCloseInitiator.LOCAL);
            assertThat(event.mode()).isEqualTo(TlsCloseMode.SHUT_RDWR);
            assertThat(client.handler.closeFuture().getNow()).isSameAs(event);
            assertThat(client.rec.awaitEvent(TlsCloseEvent.class, Duration.ofSeconds(AWAIT_SECONDS)))
                    .isSameAs(event);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Writes after our close_notify
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void writeAfterCloseNotifyFailsAtOnceAndIsReleased(SslProvider provider, String protocol) {
        try (TlsPair pair = TlsPair.builder(provider, protocol)
                .clientHandlers(new GracefulTlsCloseHandler(), RecordingHandler.swallowingExceptions())
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build()) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            ChannelFuture closed = client.close(); // our close_notify is queued, not forwarded

            ByteBuf late = buffer(client, "too late");
            ChannelFuture write = client.writeAndFlush(late);
            assertThat(write.isDone()).as("write failed at once").isTrue();
            assertThat(write.cause()).isInstanceOf(SslClosedEngineException.class)
                    .hasMessageContaining("close_notify");
            assertThat(late.refCnt()).isZero();

            ByteBuf voidWrite = buffer(client, "too late, void promise");
            client.writeAndFlush(voidWrite, client.voidPromise());
            assertThat(voidWrite.refCnt()).isZero();

            pair.pump();
            assertThat(closed.isSuccess()).isTrue();
            TlsCloseEvent event = single(pair.clientRecorder());
            assertThat(event.status()).as("the rejected writes do not spoil the outcome: %s", event)
                    .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(pair.serverRecorder().receivedBytes()).as("nothing after close_notify reached the peer")
                    .isEmpty();
            for (Throwable t : pair.clientRecorder().exceptions()) {
                assertThat(t).isInstanceOf(SslClosedEngineException.class);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Handlers removed under our feet
    // ------------------------------------------------------------------------------------------------------------

    static Stream<Arguments> handlersRemovedMidClose() {
        return Tls.casesWithProvidersAndProtocols(named("SslHandler", SslHandler.class),
                named("GracefulTlsCloseHandler", GracefulTlsCloseHandler.class));
    }

    @ParameterizedTest(name = "{0} removed, {1} {2}")
    @MethodSource("handlersRemovedMidClose")
    void handlerRemovedMidCloseIsFailed(Class<? extends ChannelHandler> removed, SslProvider provider,
                                        String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handler(client);
            ChannelFuture closed = client.close();
            assertThat(closed.isDone()).isFalse();

            client.pipeline().remove(removed);
            client.runPendingTasks();

            TlsCloseEvent event = single(pair.clientRecorder());
            assertThat(event.status()).isEqualTo(TlsCloseStatus.FAILED);
            assertThat(event.cause()).isNotNull();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(client.isOpen()).isFalse();
            assertThat(handler.closeFuture().getNow()).isSameAs(event);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void sslHandlerRemovedWhileIdleIsFailedAndLeavesTheChannelOpen(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handler(client);

            client.pipeline().remove(SslHandler.class);
            client.runPendingTasks();

            TlsCloseEvent event = single(pair.clientRecorder());
            assertThat(event.status()).isEqualTo(TlsCloseStatus.FAILED);
            assertThat(event.cause()).isNotNull();
            assertThat(client.pipeline().get(GracefulTlsCloseHandler.class)).isNull();
            assertThat(client.pipeline().context(handler)).isNull();
            assertThat(client.isOpen()).isTrue();
            assertThat(handler.closeFuture().getNow()).isSameAs(event);
            // Nothing of ours is left in the pipeline: just the application's handler.
            assertThat(client.pipeline().names()).containsExactly(
                    pair.client().pipeline().context(pair.clientRecorder()).name(),
                    "DefaultChannelPipeline$TailContext#0");
            assertThat(client.runScheduledPendingTasks()).as("no timer left").isEqualTo(-1);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // One event; closeFuture() after the fact
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void exactlyOneEventAndCloseFutureAfterTheFact(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            GracefulTlsCloseHandler[] handlers = {handler(pair.client()), handler(pair.server())};
            pair.client().close();
            pair.pump();
            assertThat(pair.client().isOpen()).isFalse();
            assertThat(pair.server().isOpen()).isFalse();

            for (Side side : Side.values()) {
                TlsCloseEvent event = single(pair.recorder(side));
                Future<TlsCloseEvent> after = handlers[side.ordinal()].closeFuture();
                assertThat(after.isSuccess()).as(side + " closeFuture() after the fact").isTrue();
                assertThat(after.getNow()).isSameAs(event);
                // Before channelInactive reached the application.
                List<Object> events = pair.recorder(side).events();
                assertThat(events.indexOf(event))
                        .isLessThan(events.indexOf(RecordingHandler.Marker.CHANNEL_INACTIVE));
                assertThat(events).containsOnlyOnce(RecordingHandler.Marker.CHANNEL_INACTIVE);
            }
            assertThat(single(pair.clientRecorder()).initiator()).isEqualTo(TlsCloseInitiator.LOCAL);
            assertThat(single(pair.serverRecorder()).initiator()).isEqualTo(TlsCloseInitiator.PEER);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Timers only while closing
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void idleHandlerSchedulesNothing(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            pair.freezeTime();
            assertThat(pair.client().runScheduledPendingTasks()).isEqualTo(-1);
            assertThat(pair.server().runScheduledPendingTasks()).isEqualTo(-1);

            // Data flowing does not schedule anything either.
            pair.client().writeAndFlush(buffer(pair.client(), "ping"));
            pair.server().writeAndFlush(buffer(pair.server(), "pong"));
            pair.pump();
            assertThat(pair.client().runScheduledPendingTasks()).isEqualTo(-1);
            assertThat(pair.server().runScheduledPendingTasks()).isEqualTo(-1);
        }
    }

    /** How our side begins a clean closure of a {@link TlsPair}'s client; returns its future. */
    private interface Closure {
        Future<TlsCloseEvent> begin(TlsPair pair);
    }

    static Stream<Arguments> cleanClosures() {
        return Tls.casesWithProvidersAndProtocols(
                named("close()", (Closure) pair -> {
                    // pipeline().close(): EmbeddedChannel.close() itself cancels every timer scheduled after it.
                    pair.client().pipeline().close();
                    return handler(pair.client()).closeFuture();
                }),
                named("bye(SHUT_RDWR)", (Closure) pair -> handler(pair.client()).bye(TlsCloseMode.SHUT_RDWR)));
    }

    @ParameterizedTest(name = "{0}, {1} {2}")
    @MethodSource("cleanClosures")
    void timersAreCancelledAfterACleanClosure(Closure closure, SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            pair.freezeTime();

            Future<TlsCloseEvent> closed = closure.begin(pair);
            assertThat(pair.client().runScheduledPendingTasks()).as("read timer while closing").isPositive();
            pair.pump();

            assertThat(closed.isSuccess()).isTrue();
            assertThat(closed.getNow().isClean()).isTrue();
            assertThat(single(pair.clientRecorder())).isSameAs(closed.getNow());
            assertThat(pair.client().runScheduledPendingTasks()).as("client timers after").isEqualTo(-1);
            assertThat(pair.server().runScheduledPendingTasks()).as("server timers after").isEqualTo(-1);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    private static TlsPair pairWithHandlers(SslProvider provider, String protocol) {
        return TlsPair.builder(provider, protocol)
                .clientHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build();
    }

    private static GracefulTlsCloseHandler handler(Channel channel) {
        GracefulTlsCloseHandler handler = channel.pipeline().get(GracefulTlsCloseHandler.class);
        assertThat(handler).as("GracefulTlsCloseHandler in " + channel.pipeline().names()).isNotNull();
        return handler;
    }

    private static ByteBuf buffer(Channel channel, String s) {
        return channel.alloc().buffer().writeBytes(s.getBytes(StandardCharsets.US_ASCII));
    }

    private static TlsCloseEvent single(RecordingHandler recorder) {
        List<TlsCloseEvent> events = recorder.eventsOfType(TlsCloseEvent.class);
        assertThat(events).as("TlsCloseEvents in " + recorder).hasSize(1);
        return events.get(0);
    }

    /**
     * Our client and a Netty server, both with our handler, over NIO loopback sockets on real event loops, handshake
     * done on both sides; {@code sockets} closes them. Not {@code LocalChannel}: on Netty 4.2.18 it can drop what the
     * peer wrote just before it closed (its finish-read task reschedules itself behind the peer's close task when
     * it was submitted during a write of ours), which here lost the server's {@code close_notify} about once in a
     * few thousand closures under load.
     */
    private static TlsSockets.Client connect(TlsSockets sockets, SslProvider provider, String protocol)
            throws Exception {
        TlsSockets.Peer peer = sockets.listen(Tls.serverContext(provider, protocol), new GracefulTlsCloseHandler(),
                new RecordingHandler(), null);
        TlsSockets.Client client = sockets.connect(Tls.clientContext(provider, protocol), peer.address(),
                new GracefulTlsCloseHandler(), new RecordingHandler());
        peer.awaitHandshake();
        return client;
    }

    private static TlsSockets sockets() {
        return new TlsSockets(group, NioSocketChannel.class, NioServerSocketChannel.class,
                Duration.ofSeconds(AWAIT_SECONDS));
    }
}
