package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.PairTestSupport.Stall;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static io.github.gracefultls.TlsCloseStatus.CLOSE_NOTIFY_RECEIVED;
import static io.github.gracefultls.TlsCloseStatus.FAILED;
import static io.github.gracefultls.TlsCloseStatus.TIMED_OUT;
import static io.github.gracefultls.TlsCloseStatus.TRUNCATED;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The closure's state machine, cell by cell: every phase of {@link Closure} (and "no closure yet") against every
 * input, on a real {@code SslHandler} pair, asserting the next phase and the one event. The client is the subject:
 * flush timeout 1 s, read timeout 2 s, half-close timeout 4 s, {@link PeerClosePolicy#HALF_CLOSE} (so that a peer
 * that begins leaves a closure in IDLE); the server is a bare {@code SslHandler} that sends its
 * {@code close_notify} when told.
 */
class ClosureTransitionTest {

    /** Where the client's closure is before the input; NONE: no closure yet. */
    enum Start { NONE, IDLE, FLUSHING, FLUSHED, CLOSED, HANDED_BACK, RELEASED }

    enum Input {
        CLOSE, BYE_RDWR, BYE_WR, SHUTDOWN_OUTPUT, PEER_CLOSE_NOTIFY, FIN, RST, INACTIVE, FLUSH_DONE, FLUSH_FAILED,
        TIMERS, HANDLER_REMOVED, ABORT
    }

    /** The expected phase after the input, and the status of the one event then (null: none yet). */
    private static final class Cell {
        final String phase;
        final TlsCloseStatus status;

        Cell(String phase, TlsCloseStatus status) {
            this.phase = phase;
            this.status = status;
        }
    }

    private static final Map<Start, Map<Input, Cell>> TABLE = new EnumMap<>(Start.class);

    static {
        // Before any closure.
        row(Start.NONE, "FLUSHED", null, Input.CLOSE, Input.BYE_RDWR, Input.BYE_WR, Input.SHUTDOWN_OUTPUT);
        row(Start.NONE, "IDLE", CLOSE_NOTIFY_RECEIVED, Input.PEER_CLOSE_NOTIFY);
        row(Start.NONE, "CLOSED", TRUNCATED, Input.FIN, Input.RST, Input.INACTIVE);
        row(Start.NONE, "NONE", null, Input.FLUSH_DONE, Input.FLUSH_FAILED, Input.TIMERS, Input.HANDLER_REMOVED);
        row(Start.NONE, "CLOSED", FAILED, Input.ABORT);
        // The peer began; HALF_CLOSE left the transport open.
        row(Start.IDLE, "CLOSED", CLOSE_NOTIFY_RECEIVED, Input.CLOSE, Input.ABORT);
        row(Start.IDLE, "HANDED_BACK", CLOSE_NOTIFY_RECEIVED, Input.BYE_RDWR, Input.BYE_WR, Input.SHUTDOWN_OUTPUT);
        row(Start.IDLE, "IDLE", CLOSE_NOTIFY_RECEIVED, Input.PEER_CLOSE_NOTIFY, Input.FIN, Input.RST, Input.INACTIVE,
                Input.FLUSH_DONE, Input.FLUSH_FAILED, Input.TIMERS, Input.HANDLER_REMOVED);
        // close(): our close_notify held below the SslHandler.
        row(Start.FLUSHING, "FLUSHING", null, Input.CLOSE, Input.BYE_RDWR, Input.BYE_WR, Input.SHUTDOWN_OUTPUT);
        row(Start.FLUSHING, "FLUSHING", CLOSE_NOTIFY_RECEIVED, Input.PEER_CLOSE_NOTIFY);
        row(Start.FLUSHING, "FLUSHING", TRUNCATED, Input.FIN, Input.RST);
        row(Start.FLUSHING, "CLOSED", TRUNCATED, Input.INACTIVE);
        row(Start.FLUSHING, "FLUSHED", null, Input.FLUSH_DONE);
        row(Start.FLUSHING, "CLOSED", FAILED, Input.FLUSH_FAILED, Input.ABORT);
        row(Start.FLUSHING, "CLOSED", TIMED_OUT, Input.TIMERS);
        row(Start.FLUSHING, "FLUSHING", FAILED, Input.HANDLER_REMOVED); // closes once flushed or at the flush timer
        // close(): our close_notify is out, waiting for the peer's.
        row(Start.FLUSHED, "FLUSHED", null, Input.CLOSE, Input.BYE_RDWR, Input.BYE_WR, Input.SHUTDOWN_OUTPUT,
                Input.FLUSH_DONE, Input.FLUSH_FAILED);
        row(Start.FLUSHED, "CLOSED", CLOSE_NOTIFY_RECEIVED, Input.PEER_CLOSE_NOTIFY);
        row(Start.FLUSHED, "CLOSED", TRUNCATED, Input.FIN, Input.RST, Input.INACTIVE);
        row(Start.FLUSHED, "CLOSED", TIMED_OUT, Input.TIMERS);
        row(Start.FLUSHED, "CLOSED", FAILED, Input.HANDLER_REMOVED, Input.ABORT);
        // Terminal phases: nothing changes, but an abort of a handed-back or released transport.
        row(Start.CLOSED, "CLOSED", TIMED_OUT, Input.values());
        row(Start.HANDED_BACK, "HANDED_BACK", CLOSE_NOTIFY_RECEIVED, Input.values());
        row(Start.HANDED_BACK, "CLOSED", CLOSE_NOTIFY_RECEIVED, Input.ABORT);
        row(Start.RELEASED, "RELEASED", FAILED, Input.values());
        row(Start.RELEASED, "CLOSED", FAILED, Input.ABORT);
    }

    private static void row(Start start, String phase, TlsCloseStatus status, Input... inputs) {
        Map<Input, Cell> row = TABLE.computeIfAbsent(start, s -> new EnumMap<>(Input.class));
        for (Input input : inputs) {
            row.put(input, new Cell(phase, status));
        }
    }

    static Stream<Arguments> cells() {
        List<Arguments> cells = new ArrayList<>();
        Tls.providersAndProtocols().forEach(pp -> {
            for (Start start : Start.values()) {
                for (Input input : Input.values()) {
                    cells.add(Arguments.of(start, input, pp.get()[0], pp.get()[1]));
                }
            }
        });
        return cells.stream();
    }

    @Test
    void theTableCoversEveryPhaseAndEveryInput() {
        assertThat(TABLE).containsOnlyKeys(Start.values());
        for (Start start : Start.values()) {
            assertThat(TABLE.get(start)).as("%s", start).containsOnlyKeys(Input.values());
        }
        for (byte phase = Closure.IDLE; phase <= Closure.RELEASED; phase++) {
            assertThat(Start.valueOf(ClosureNames.phase(phase))).isNotNull();
        }
    }

    @ParameterizedTest(name = "{0} + {1}: {2} {3}")
    @MethodSource("cells")
    void eachPhaseAgainstEachInput(Start start, Input input, SslProvider provider, String protocol) {
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder()
                .closeNotifyFlushTimeout(Duration.ofSeconds(1))
                .closeNotifyReadTimeout(Duration.ofSeconds(2))
                .halfCloseTimeout(Duration.ofSeconds(4))
                .peerClosePolicy(PeerClosePolicy.HALF_CLOSE)
                .build();
        Stall stall = new Stall();
        try (Fixture f = Fixture.withClientStall(provider, protocol, handler, null, stall).handshake()) {
            reach(f, stall, start);
            assertState(f, start.name(), startStatus(start), "reaching " + start);

            apply(f, stall, input);

            Cell expected = TABLE.get(start).get(input);
            assertState(f, expected.phase, expected.status, start + " + " + input);
            if (start == Start.NONE && input == Input.HANDLER_REMOVED) {
                f.handlerRemovedBeforeAnyClosure();
            }
        }
    }

    private static void reach(Fixture f, Stall stall, Start start) {
        EmbeddedChannel client = f.client();
        switch (start) {
            case NONE:
                break;
            case IDLE:
                peerSendsCloseNotify(f);
                break;
            case FLUSHING:
                stall.stall();
                client.pipeline().close(); // EmbeddedChannel.close() would cancel the timers
                break;
            case FLUSHED:
                client.pipeline().close(); // EmbeddedChannel.close() would cancel the timers
                break;
            case CLOSED:
                client.pipeline().close(); // EmbeddedChannel.close() would cancel the timers
                f.pair.advanceTimeBy(2, TimeUnit.SECONDS);
                break;
            case HANDED_BACK:
                f.clientHandler().bye(TlsCloseMode.SHUT_RDWR);
                peerSendsCloseNotify(f);
                break;
            case RELEASED:
                client.pipeline().remove(SslHandler.class);
                break;
            default:
                throw new AssertionError(start);
        }
        f.pair.runPendingTasks();
    }

    private static void apply(Fixture f, Stall stall, Input input) {
        EmbeddedChannel client = f.client();
        GracefulTlsCloseHandler handler = f.clientHandler();
        List<Future<TlsCloseEvent>> futures = new ArrayList<>();
        switch (input) {
            case CLOSE:
                client.pipeline().close(); // EmbeddedChannel.close() would cancel the timers
                break;
            case BYE_RDWR:
                futures.add(handler.bye(TlsCloseMode.SHUT_RDWR));
                break;
            case BYE_WR:
                futures.add(handler.bye(TlsCloseMode.SHUT_WR));
                break;
            case SHUTDOWN_OUTPUT:
                futures.add(handler.shutdownOutput()); // an EmbeddedChannel cannot half-close: as bye(SHUT_WR)
                break;
            case PEER_CLOSE_NOTIFY:
                peerSendsCloseNotify(f);
                break;
            case FIN:
                client.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
                break;
            case RST:
                boolean handled = client.pipeline().context(handler) != null;
                client.pipeline().fireExceptionCaught(new IOException("Connection reset by peer"));
                if (!handled) {
                    // No handler to take it: it reaches the end of the pipeline, as on any plain channel.
                    assertThatThrownBy(client::checkException).hasMessage("Connection reset by peer");
                }
                break;
            case INACTIVE:
                client.unsafe().close(client.unsafe().voidPromise());
                break;
            case FLUSH_DONE:
                stall.resume();
                break;
            case FLUSH_FAILED:
                stall.failHeld(new IOException("Broken pipe"));
                break;
            case TIMERS:
                f.pair.advanceTimeBy(10, TimeUnit.SECONDS); // past every deadline
                break;
            case HANDLER_REMOVED:
                if (client.pipeline().context(handler) != null) {
                    client.pipeline().remove(handler);
                }
                break;
            case ABORT:
                handler.abort(new IOException("aborted by the test"));
                break;
            default:
                throw new AssertionError(input);
        }
        f.pair.runPendingTasks();
        for (Future<TlsCloseEvent> future : futures) {
            TlsCloseEvent event = handler.closure().event();
            if (event != null) {
                assertThat(future.getNow()).as("a bye() future completes with the one event").isSameAs(event);
            }
        }
    }

    /** The server's SslHandler sends its close_notify, unless it did already or the client is gone. */
    private static void peerSendsCloseNotify(Fixture f) {
        SslHandler server = f.pair.sslHandler(Side.SERVER);
        if (!server.engine().isOutboundDone() && f.client().isActive()) {
            server.closeOutbound();
            f.pair.forward(Side.SERVER);
        }
    }

    /** The client's closure is in {@code phase}, and the client saw exactly one event of {@code status}, or none. */
    private static void assertState(Fixture f, String phase, TlsCloseStatus status, String as) {
        Closure c = f.clientHandler().closure();
        String actual = c == null ? "NONE" : ClosureNames.phase(c.phase());
        assertThat(actual).as("phase after %s: %s", as, c).isEqualTo(phase);
        List<TlsCloseEvent> events = f.clientApp().eventsOfType(TlsCloseEvent.class);
        if (status == null) {
            assertThat(events).as("no event yet after %s", as).isEmpty();
        } else {
            assertThat(events).as("exactly one event after %s", as).hasSize(1);
            assertThat(events.get(0).status()).as("%s after %s", events.get(0), as).isEqualTo(status);
            assertThat(c.event()).isSameAs(events.get(0));
        }
    }

    /** The event each start has once reached. */
    private static TlsCloseStatus startStatus(Start start) {
        switch (start) {
            case IDLE:
            case HANDED_BACK:
                return CLOSE_NOTIFY_RECEIVED;
            case CLOSED:
                return TIMED_OUT;
            case RELEASED:
                return FAILED;
            default:
                return null;
        }
    }
}
