package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.PairTestSupport.Stall;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelFuture;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLException;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.assertCompletedWith;
import static io.github.gracefultls.PairTestSupport.assertEvent;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buffer;
import static io.github.gracefultls.PairTestSupport.completions;
import static io.github.gracefultls.PairTestSupport.handlerOf;
import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static io.github.gracefultls.PairTestSupport.pairWithHandlers;
import static io.github.gracefultls.TlsCloseInitiator.LOCAL;
import static io.github.gracefultls.TlsCloseMode.SHUT_RDWR;
import static io.github.gracefultls.TlsCloseStatus.FAILED;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * Local failures while closing: {@code FAILED}, the channel is closed, and the futures and the close promise still
 * complete. Also: writes issued after our close_notify are rejected at once.
 */
class FailurePairTest {

    private static final IOException WRITE_FAILURE = new IOException("test: the transport rejects writes");

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeWhoseCloseNotifyWriteFailsIsFailedAndClosesTheChannel(SslProvider provider, String protocol) {
        Stall stall = new Stall();
        try (Fixture f = Fixture.withClientStall(provider, protocol, new GracefulTlsCloseHandler(),
                new GracefulTlsCloseHandler(), stall).handshake()) {
            stall.failWrites(WRITE_FAILURE);

            Future<TlsCloseEvent> bye = f.clientHandler().bye(SHUT_RDWR);
            AtomicInteger byeCompletions = completions(bye);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, FAILED, LOCAL, SHUT_RDWR);
            assertThat(event.cause()).isSameAs(WRITE_FAILURE);
            assertCompletedWith(bye, byeCompletions, event);
            assertThat(f.client().isOpen()).isFalse();
            assertThat(f.clientApp().exceptions()).isEmpty();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeWhoseCloseNotifyWriteFailsCompletesItsPromise(SslProvider provider, String protocol) {
        Stall stall = new Stall();
        try (Fixture f = Fixture.withClientStall(provider, protocol, new GracefulTlsCloseHandler(),
                new GracefulTlsCloseHandler(), stall).handshake()) {
            stall.failWrites(WRITE_FAILURE);

            ChannelFuture closed = f.client().pipeline().close();
            AtomicInteger closeCompletions = completions(closed);

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, FAILED, LOCAL, SHUT_RDWR);
            assertThat(f.client().isOpen()).isFalse();
            assertThat(closed.isDone()).as("the close promise completes once the transport is closed").isTrue();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(closeCompletions).hasValue(1);
        }
    }

    /** The peer's reply is corrupted in transit: an SSLException while closing, reported, not propagated. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void sslExceptionWhileWaitingForThePeersCloseNotifyIsFailed(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            ChannelFuture closed = f.client().pipeline().close();
            f.pair.forward(Side.CLIENT);
            byte[] reply = f.pair.drainOutbound(Side.SERVER);
            reply[reply.length - 1] ^= 0x55; // breaks the close_notify record's authentication tag

            f.pair.deliver(Side.CLIENT, reply);
            f.client().runPendingTasks();

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, FAILED, LOCAL, SHUT_RDWR);
            assertThat(event.cause()).isInstanceOf(SSLException.class);
            assertThat(f.clientApp().exceptions()).as("reported in the event, not propagated").isEmpty();
            assertThat(f.client().isOpen()).isFalse();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void handlerRemovedMidCloseIsFailedAndClosesTheChannel(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            ChannelFuture closed = f.client().pipeline().close();
            Future<TlsCloseEvent> closeFuture = f.clientHandler().closeFuture();
            assertThat(closed.isDone()).isFalse();

            f.client().pipeline().remove("tls-close");
            f.client().runPendingTasks();

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertEvent(event, FAILED, LOCAL, SHUT_RDWR);
            assertThat(event.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("removed");
            assertThat(f.client().isOpen()).isFalse();
            assertThat(closed.isSuccess()).isTrue();
            assertThat(closeFuture.getNow()).isSameAs(event);
        }
    }

    /**
     * The SslHandler removed during our wait for the peer's close_notify: {@code FAILED}, and the close completes.
     * ({@link #handlerRemovedMidCloseIsFailedAndClosesTheChannel} removes ours.)
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void sslHandlerRemovedMidCloseIsFailedAndClosesTheChannel(SslProvider provider, String protocol) {
        try (TlsPair pair = pairWithHandlers(provider, protocol)) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            GracefulTlsCloseHandler handler = handlerOf(client);
            ChannelFuture closed = client.close();
            assertThat(closed.isDone()).isFalse();

            client.pipeline().remove(SslHandler.class);
            client.runPendingTasks();

            TlsCloseEvent event = onlyEvent(pair.clientRecorder());
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
            GracefulTlsCloseHandler handler = handlerOf(client);

            client.pipeline().remove(SslHandler.class);
            client.runPendingTasks();

            TlsCloseEvent event = onlyEvent(pair.clientRecorder());
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

    /** How our side sends its close_notify: {@code close()} (SHUT_RDWR) or {@code bye(SHUT_WR)}; returns its future. */
    private interface Closure {
        Future<?> begin(EmbeddedChannel client);
    }

    static Stream<Arguments> closures() {
        return Tls.casesWithProvidersAndProtocols(
                named("close()", (Closure) EmbeddedChannel::close),
                named("bye(SHUT_WR)", (Closure) client -> handlerOf(client).bye(TlsCloseMode.SHUT_WR)));
    }

    /**
     * After our close_notify, writes fail at once with a clear exception, are released (with a void promise too), and
     * send nothing; they do not spoil the clean outcome.
     */
    @ParameterizedTest(name = "{0}, {1} {2}")
    @MethodSource("closures")
    void writesAfterOurCloseNotifyFailAtOnce(Closure closure, SslProvider provider, String protocol) {
        try (TlsPair pair = TlsPair.builder(provider, protocol)
                .clientHandlers(new GracefulTlsCloseHandler(), RecordingHandler.swallowingExceptions())
                .serverHandlers(new GracefulTlsCloseHandler(), new RecordingHandler())
                .build()) {
            pair.handshake();
            EmbeddedChannel client = pair.client();
            Future<?> closing = closure.begin(client);
            byte[] closeNotify = pair.drainOutbound(Side.CLIENT);

            ByteBuf late = buffer(client, "too late");
            ChannelFuture written = client.writeAndFlush(late);

            assertThat(written.isDone()).as("write failed at once").isTrue();
            assertThat(written.cause()).isInstanceOf(SslClosedEngineException.class)
                    .hasMessageContaining("close_notify");
            assertThat(late.refCnt()).isZero();
            assertThat(pair.hasPendingOutbound(Side.CLIENT)).isFalse();
            assertThat(pair.clientRecorder().exceptions()).isEmpty();

            ByteBuf voidWrite = buffer(client, "too late, void promise");
            client.writeAndFlush(voidWrite, client.voidPromise());
            assertThat(voidWrite.refCnt()).isZero();

            pair.deliver(Side.SERVER, closeNotify);
            pair.pump();
            assertThat(closing.isSuccess()).isTrue();
            TlsCloseEvent event = onlyEvent(pair.clientRecorder());
            assertThat(event.status()).as("the rejected writes do not spoil the outcome: %s", event)
                    .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            if (closing.getNow() instanceof TlsCloseEvent) { // bye(SHUT_WR)'s event; close()'s promise has none
                assertThat(((TlsCloseEvent) closing.getNow()).isClean()).isTrue();
            }
            assertThat(pair.serverRecorder().receivedBytes()).as("nothing after close_notify reached the peer")
                    .isEmpty();
            for (Throwable t : pair.clientRecorder().exceptions()) {
                assertThat(t).isInstanceOf(SslClosedEngineException.class);
            }
        }
    }
}
