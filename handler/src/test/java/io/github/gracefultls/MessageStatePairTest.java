package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.testing.TlsPair.Side;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static io.github.gracefultls.PairTestSupport.COMBOS;
import static io.github.gracefultls.PairTestSupport.assertOneEventBeforeInactive;
import static io.github.gracefultls.PairTestSupport.buf;
import static io.github.gracefultls.PairTestSupport.randomBytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatNullPointerException;

/**
 * Message marks ({@link GracefulTlsCloseHandler#messageStarted()}, {@link GracefulTlsCloseHandler#messageCompleted()})
 * and the {@link MessageState} they put in the {@link TlsCloseEvent}: a truncation inside a message is a cut message,
 * one between messages or a clean end is not, and with no marks the event says nothing about messages.
 */
class MessageStatePairTest {

    private static final byte[] PAYLOAD = randomBytes(3_000, 14);

    /** The server sends a part of a message, then drops TCP without close_notify; the client's input ends. */
    private static TlsCloseEvent truncatedAfterSomeBytes(Fixture f) {
        f.server().writeAndFlush(buf(f.server(), PAYLOAD));
        f.pair.forward(Side.SERVER);
        f.server().pipeline().firstContext().close(); // below the SslHandler: no close_notify
        f.client().pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        f.client().runPendingTasks();
        return assertOneEventBeforeInactive(f.clientApp());
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void aTruncationInsideAMarkedMessageIsACutMessage(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), null).handshake()) {
            f.clientHandler().messageStarted();

            TlsCloseEvent event = truncatedAfterSomeBytes(f);

            assertThat(event.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE);
            assertThat(event.isMessageCut()).isTrue();
            assertThat(event.toString()).startsWith("TlsCloseEvent(TRUNCATED, PEER, -, 0us, in message, "
                    + "TlsTruncationException: ");
            assertThat(f.clientApp().receivedBytes()).isEqualTo(PAYLOAD);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void aTruncationAfterTheMessageCompletedIsBetweenMessages(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), null).handshake()) {
            EmbeddedChannel client = f.client();
            assertThat(GracefulTlsCloseHandler.messageStarted(client)).isTrue();
            assertThat(GracefulTlsCloseHandler.messageCompleted(client)).isTrue();

            TlsCloseEvent event = truncatedAfterSomeBytes(f);

            assertThat(event.status()).isEqualTo(TlsCloseStatus.TRUNCATED);
            assertThat(event.messageState()).isEqualTo(MessageState.BETWEEN_MESSAGES);
            assertThat(event.isMessageCut()).isFalse();
            assertThat(event.toString()).startsWith("TlsCloseEvent(TRUNCATED, PEER, -, 0us, between messages, "
                    + "TlsTruncationException: ");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void withoutMarksTheEventSaysNothingAboutMessages(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), null).handshake()) {
            TlsCloseEvent event = truncatedAfterSomeBytes(f);

            assertThat(event.messageState()).isEqualTo(MessageState.UNMARKED);
            assertThat(event.isMessageCut()).isFalse();
            assertThat(event.toString()).startsWith("TlsCloseEvent(TRUNCATED, PEER, -, 0us, TlsTruncationException: ");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void aCleanEndInsideAMessageIsNotACut(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.of(provider, protocol, new GracefulTlsCloseHandler(), null).handshake()) {
            f.clientHandler().messageStarted();
            f.server().writeAndFlush(buf(f.server(), PAYLOAD));
            f.server().close(); // close_notify after the bytes
            f.pair.pump();

            TlsCloseEvent event = assertOneEventBeforeInactive(f.clientApp());
            assertThat(event.isClean()).isTrue();
            assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE);
            assertThat(event.isMessageCut()).isFalse();
            assertThat(event.toString()).startsWith("TlsCloseEvent(CLOSE_NOTIFY_RECEIVED, PEER, -, 0us, in message)");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void aMarkAfterTheOutcomeChangesNothing(SslProvider provider, String protocol) {
        try (Fixture f = Fixture.halfClosing(provider, protocol, new GracefulTlsCloseHandler(), null).handshake()) {
            f.clientHandler().messageStarted();
            TlsCloseEvent event = truncatedAfterSomeBytes(f);

            f.clientHandler().messageCompleted();

            assertThat(event.messageState()).isEqualTo(MessageState.IN_MESSAGE);
            assertThat(f.clientHandler().closeFuture().getNow()).isSameAs(event);
        }
    }

    @Test
    void theChannelMarksSayWhetherThePipelineHoldsAHandler() {
        EmbeddedChannel plain = new EmbeddedChannel();
        try {
            assertThat(GracefulTlsCloseHandler.messageStarted(plain)).isFalse();
            assertThat(GracefulTlsCloseHandler.messageCompleted(plain)).isFalse();
            assertThatNullPointerException().isThrownBy(() -> GracefulTlsCloseHandler.messageStarted(null))
                    .withMessage("channel");
        } finally {
            plain.finishAndReleaseAll();
        }
    }
}
