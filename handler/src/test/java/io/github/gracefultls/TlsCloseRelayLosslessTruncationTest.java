package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link TlsCloseRelay}: a truncation is passed on only after every byte the truncated side delivered, and still as a
 * truncation. The upstream sends 8 MiB and ends without {@code close_notify} (a bare FIN, which delivers every byte
 * first); the client reads at once, or late, so that every buffer on the way is full when the truncation comes.
 */
class TlsCloseRelayLosslessTruncationTest extends TlsCloseRelayTestBase {

    static final int SIZE = 8 * MIB;
    static final long LATE_MILLIS = 1000;
    /**
     * The drain period where a test checks that nothing is lost: the client has started reading before the relay's
     * last flush completes, so it only has to read what the kernels hold; far from anything a stall can reach.
     */
    static final Duration LONG_DRAIN = Duration.ofSeconds(8);

    static Stream<Arguments> cellsAndLateness() {
        return cells().flatMap(a -> Stream.of(0L, LATE_MILLIS).map(late -> Arguments.of(a.get()[0], a.get()[1], late)));
    }

    /** A bare FIN ends the client's stream after every byte; the client, as our handler does, ends at once. */
    @ParameterizedTest(name = "{0} {1}, client {2} ms late")
    @MethodSource("cellsAndLateness")
    void finSignalDeliversEveryByteThenATruncation(SslProvider provider, String protocol, long lateMillis)
            throws Exception {
        Run run = new Run(provider, protocol, TlsCloseRelay.TruncationSignal.FIN, lateMillis).finish();

        assertThat(run.clientEvent.status()).as("client %s; relay %s", run.clientEvent, run.outcome)
                .isEqualTo(TlsCloseStatus.TRUNCATED);
        assertThat(run.clientEvent.cause()).as("%s", run.clientEvent).hasMessageContaining("(FIN)");
        assertSameBytes(run.client.rec.receivedBytes(), run.response, "what the client got before the truncation");
        assertRelayOutcome(run);
    }

    /**
     * The default: every byte, then a reset once the drain period is over. The cells run at once, a client reading at
     * once and one reading late for each engine, so that the drain periods overlap.
     */
    @Test
    void resetSignalDeliversEveryByteThenAReset() throws Exception {
        List<Run> runs = new ArrayList<>();
        for (Object[] cell : List.of(new Object[] {SslProvider.JDK, Tls.TLS_1_3},
                new Object[] {SslProvider.OPENSSL, Tls.TLS_1_2})) {
            for (long late : new long[] {0, LATE_MILLIS}) {
                runs.add(new Run((SslProvider) cell[0], (String) cell[1], TlsCloseRelay.TruncationSignal.RESET, late));
            }
        }
        for (Run run : runs) {
            run.finish();
            assertThat(run.clientEvent.status()).as("%s: client %s; relay %s", run, run.clientEvent, run.outcome)
                    .isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(run.clientEvent.cause().getCause()).as("%s: a reset, not a FIN: %s", run, run.clientEvent)
                    .isInstanceOf(java.io.IOException.class);
            assertSameBytes(run.client.rec.receivedBytes(), run.response,
                    run + ": what the client got before the reset");
            assertRelayOutcome(run);
        }
    }

    private static void assertRelayOutcome(Run run) throws Exception {
        assertThat(run.outcome.backendEnd()).as("%s", run.outcome).isEqualTo(TlsCloseRelay.End.TRUNCATED);
        assertThat(run.outcome.frontendEnd()).as("%s", run.outcome).isEqualTo(TlsCloseRelay.End.ABORTED);
        assertThat(run.outcome.frontendCause()).as("%s", run.outcome)
                .hasMessageContaining("the backend ended TRUNCATED");
        assertBothClosed(run.proxy);
    }

    /** One proxied exchange: a request, 8 MiB back, then a bare FIN from the TLS upstream. */
    final class Run {
        final SslProvider provider;
        final String protocol;
        final long lateMillis;
        final byte[] response = payload(SIZE, 30);
        final Proxy proxy;
        final Client client;
        final ChannelFuture upstreamEnded;
        TlsCloseEvent clientEvent;
        TlsCloseRelay.Outcome outcome;

        /** Starts the exchange; {@link #finish()} waits for its end. */
        Run(SslProvider provider, String protocol, TlsCloseRelay.TruncationSignal signal, long lateMillis)
                throws Exception {
            this.provider = provider;
            this.protocol = protocol;
            this.lateMillis = lateMillis;
            UpstreamServer upstream = startUpstream(Upstream.TLS, provider, protocol, GracefulTlsCloseHandler::new);
            proxy = startProxy(provider, protocol, upstream, GracefulTlsCloseHandler::new, signal, LONG_DRAIN);
            client = sockets.connect(Tls.clientContext(provider, protocol), proxy.server.localAddress(),
                    new GracefulTlsCloseHandler(), RecordingHandler.swallowingExceptions(),
                    b -> b.option(ChannelOption.AUTO_READ, false));
            client.channel.writeAndFlush(Unpooled.wrappedBuffer(payload(1024, 31)));
            Channel up = upstream.awaitAccepted();
            upstream.rec.awaitBytes(1024, AWAIT);
            client.channel.eventLoop().schedule(() -> client.channel.config().setAutoRead(true), lateMillis,
                    TimeUnit.MILLISECONDS);
            // Every byte is written before the FIN: the FIN comes after them on the wire, lossless by itself.
            upstreamEnded = up.writeAndFlush(Unpooled.wrappedBuffer(response)).addListener(f -> {
                ChannelHandlerContext first = up.pipeline().firstContext();
                first.close(); // below TLS: no close_notify
            });
        }

        Run finish() throws Exception {
            upstreamEnded.get(AWAIT_SECONDS, TimeUnit.SECONDS);
            clientEvent = client.awaitEvent(AWAIT);
            outcome = proxy.awaitOutcome();
            return this;
        }

        @Override
        public String toString() {
            return provider + " " + protocol + ", client " + lateMillis + " ms late";
        }
    }
}
