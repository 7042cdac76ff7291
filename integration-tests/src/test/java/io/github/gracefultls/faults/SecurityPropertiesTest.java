package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.PeerClosePolicy;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TlsPair;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.buffer.Unpooled;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The security properties, each a test, on a real {@code SslHandler} pair with a driven clock: truncation is never
 * reported as {@code CLOSE_NOTIFY_RECEIVED}; no input holds a closing connection past its deadline; a peer's
 * {@code close_notify} never turns the connection into plaintext unless {@code REUSE_TRANSPORT} is configured.
 * (Over real sockets: {@link TruncatingPeerTest}, {@link UnansweredClosureTest}; and the ground truth of
 * {@link RandomScheduleTest}.)
 */
class SecurityPropertiesTest {

    static final Duration DEADLINE = Duration.ofSeconds(1);
    static final byte[] PLAINTEXT = "PLAINTEXT-AFTER-CLOSE_NOTIFY".getBytes(StandardCharsets.US_ASCII);

    static Stream<Arguments> providersAndProtocols() {
        return io.github.gracefultls.testing.Tls.providersAndProtocols();
    }

    static Stream<Arguments> withEnding() {
        return providersAndProtocols().flatMap(a -> Stream.of("FIN", "INACTIVE")
                .map(e -> Arguments.of(a.get()[0], a.get()[1], e)));
    }

    static Stream<Arguments> withInput() {
        return providersAndProtocols().flatMap(a -> Stream.of("APP_DATA", "PARTIAL_RECORD")
                .flatMap(i -> Stream.of("CLOSE", "BYE_RDWR", "SHUTDOWN_OUTPUT")
                        .map(op -> Arguments.of(a.get()[0], a.get()[1], i, op))));
    }

    static Stream<Arguments> withPolicy() {
        return providersAndProtocols().flatMap(a -> Stream.of(PeerClosePolicy.values())
                .map(p -> Arguments.of(a.get()[0], a.get()[1], p)));
    }

    private static TlsPair pair(SslProvider provider, String protocol, GracefulTlsCloseHandler handler,
                                RecordingHandler rec) {
        TlsPair pair = TlsPair.builder(provider, protocol)
                .client(p -> p.addLast("tls-close", handler).addLast("rec", rec))
                .build();
        pair.freezeTime();
        pair.handshake();
        return pair;
    }

    /**
     * The peer's close_notify (and everything before it) cut at every byte offset, then the input ends: never
     * clean. Only the whole record is.
     */
    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("withEnding")
    void truncationIsNeverReportedAsCloseNotifyReceived(SslProvider provider, String protocol, String ending) {
        int length;
        try (TlsPair probe = pair(provider, protocol, new GracefulTlsCloseHandler(),
                RecordingHandler.swallowingExceptions())) {
            probe.serverSsl().closeOutbound();
            length = probe.drainOutbound(Side.SERVER).length;
        }
        assertThat(length).isPositive();
        for (int cut = 0; cut <= length; cut++) {
            RecordingHandler rec = RecordingHandler.swallowingExceptions();
            GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
            try (TlsPair pair = pair(provider, protocol, handler, rec)) {
                pair.serverSsl().closeOutbound();
                byte[] bytes = pair.drainOutbound(Side.SERVER);
                assertThat(bytes.length).isEqualTo(length);
                if (cut > 0) {
                    pair.deliver(Side.CLIENT, Arrays.copyOf(bytes, cut));
                }
                if (pair.client().isOpen()) {
                    if ("FIN".equals(ending)) {
                        pair.client().pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
                    } else {
                        pair.client().unsafe().close(pair.client().unsafe().voidPromise());
                    }
                }
                pair.runPendingTasks();
                assertThat(rec.eventsOfType(TlsCloseEvent.class)).as("cut %d of %d", cut, length).hasSize(1);
                TlsCloseEvent event = rec.eventsOfType(TlsCloseEvent.class).get(0);
                if (cut < length) {
                    assertThat(event.status()).as("cut %d of %d: %s", cut, length, event)
                            .isEqualTo(TlsCloseStatus.TRUNCATED);
                } else {
                    assertThat(event.status()).as("whole close_notify: %s", event)
                            .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
                }
                assertThat(rec.exceptions()).isEmpty();
            }
        }
    }

    /**
     * A peer feeding input every 100 ms (application data records, or a record one byte at a time that never
     * completes) cannot move the deadline: the closure times out at exactly the configured deadline.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("withInput")
    void noInputHoldsAClosingConnectionPastItsDeadline(SslProvider provider, String protocol, String input,
                                                       String op) {
        RecordingHandler rec = RecordingHandler.swallowingExceptions();
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(DEADLINE)
                .halfCloseTimeout(DEADLINE).build();
        try (TlsPair pair = pair(provider, protocol, handler, rec)) {
            pair.pump();
            Future<TlsCloseEvent> f;
            switch (op) {
                case "CLOSE":
                    pair.client().pipeline().close();
                    f = handler.closeFuture();
                    break;
                case "BYE_RDWR":
                    f = handler.bye(TlsCloseMode.SHUT_RDWR);
                    break;
                default:
                    f = handler.shutdownOutput();
                    break;
            }
            pair.drainOutbound(Side.CLIENT); // our close_notify never reaches the peer's TLS: it never answers
            byte[] slowRecord = {23, 3, 3, 0x40, 0};
            long ticks = 0;
            while (!f.isDone() && ticks < 100) {
                if ("APP_DATA".equals(input)) {
                    pair.server().writeAndFlush(Unpooled.wrappedBuffer(new byte[] {'x'}));
                    pair.forward(Side.SERVER);
                } else {
                    pair.deliver(Side.CLIENT, ticks < slowRecord.length
                            ? new byte[] {slowRecord[(int) ticks]} : new byte[] {(byte) ticks});
                }
                pair.advanceTimeBy(100, TimeUnit.MILLISECONDS);
                ticks++;
            }
            assertThat(f.isDone()).as("concluded within 100 ticks").isTrue();
            TlsCloseEvent event = f.getNow();
            assertThat(event.status()).as("%s", event).isEqualTo(TlsCloseStatus.TIMED_OUT);
            assertThat(event.elapsed()).isEqualTo(DEADLINE);
            assertThat(ticks).isEqualTo(DEADLINE.toMillis() / 100);
            assertThat(pair.client().isOpen()).isFalse();
            assertThat(rec.eventsOfType(TlsCloseEvent.class)).containsExactly(event);
            assertThat(rec.exceptions()).isEmpty();
        }
    }

    /**
     * The peer sends close_notify and plaintext in one buffer. Only under REUSE_TRANSPORT does the plaintext reach
     * the application; under CLOSE (the default) and HALF_CLOSE it never does, and under CLOSE the channel closes.
     */
    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("withPolicy")
    void closeNotifyNeverTurnsTheConnectionIntoPlaintextUnlessConfigured(SslProvider provider, String protocol,
                                                                         PeerClosePolicy policy) {
        RecordingHandler rec = RecordingHandler.swallowingExceptions();
        GracefulTlsCloseHandler handler = policy == PeerClosePolicy.CLOSE
                ? new GracefulTlsCloseHandler() // the default
                : GracefulTlsCloseHandler.builder().peerClosePolicy(policy).build();
        try (TlsPair pair = pair(provider, protocol, handler, rec)) {
            pair.pump();
            pair.serverSsl().closeOutbound();
            byte[] closeNotify = pair.drainOutbound(Side.SERVER);
            byte[] both = Arrays.copyOf(closeNotify, closeNotify.length + PLAINTEXT.length);
            System.arraycopy(PLAINTEXT, 0, both, closeNotify.length, PLAINTEXT.length);
            pair.deliver(Side.CLIENT, both);
            pair.runPendingTasks();

            TlsCloseEvent event = rec.eventsOfType(TlsCloseEvent.class).get(0);
            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            String received = new String(rec.receivedBytes(), StandardCharsets.US_ASCII);
            boolean sslStillThere = pair.client().pipeline().get(SslHandler.class) != null;
            if (policy == PeerClosePolicy.REUSE_TRANSPORT) {
                assertThat(received).as("configured reuse delivers the plaintext").contains("PLAINTEXT");
                assertThat(sslStillThere).isFalse();
                assertThat(pair.client().isOpen()).isTrue();
            } else {
                assertThat(received).as("plaintext under %s", policy).doesNotContain("PLAINTEXT");
                assertThat(pair.client().isOpen() && !sslStillThere).as("a plaintext transport under %s", policy)
                        .isFalse();
                if (policy == PeerClosePolicy.CLOSE) {
                    assertThat(pair.client().isOpen()).as("closed under the default policy").isFalse();
                }
                // Later plaintext does not get through either.
                pair.deliver(Side.CLIENT, PLAINTEXT);
                pair.runPendingTasks();
                assertThat(new String(rec.receivedBytes(), StandardCharsets.US_ASCII)).doesNotContain("PLAINTEXT");
            }
            assertThat(rec.eventsOfType(TlsCloseEvent.class)).hasSize(1);
        }
    }
}
