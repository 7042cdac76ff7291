package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.PairTestSupport.Stall;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.channel.ChannelFuture;
import io.netty.handler.ssl.SslClosedEngineException;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLException;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.ascii;
import static io.github.gracefultls.PairTestSupport.assertCompletedWith;
import static io.github.gracefultls.PairTestSupport.assertEvent;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.completions;
import static io.github.gracefultls.TlsCloseInitiator.LOCAL;
import static io.github.gracefultls.TlsCloseMode.SHUT_RDWR;
import static io.github.gracefultls.TlsCloseStatus.FAILED;
import static org.assertj.core.api.Assertions.assertThat;

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

    /** After our close_notify, writes fail at once with a clear exception, are released, and send nothing. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void writesAfterOurCloseNotifyFailAtOnce(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), new GracefulTlsCloseHandler())
                .handshake()) {
            Future<TlsCloseEvent> bye = f.clientHandler().bye(TlsCloseMode.SHUT_WR);
            byte[] closeNotify = f.pair.drainOutbound(Side.CLIENT);

            ChannelFuture written = f.client().writeAndFlush(buf(f.client(), ascii("too late")));

            assertThat(written.isDone()).isTrue();
            assertThat(written.cause()).isInstanceOf(SslClosedEngineException.class)
                    .hasMessageContaining("close_notify");
            assertThat(f.pair.hasPendingOutbound(Side.CLIENT)).isFalse();
            assertThat(f.clientApp().exceptions()).isEmpty();

            f.pair.deliver(Side.SERVER, closeNotify);
            f.pair.forward(Side.SERVER);
            assertThat(bye.getNow().isClean()).isTrue();
            assertThat(f.serverApp().receivedBytes()).isEmpty();
        }
    }
}
