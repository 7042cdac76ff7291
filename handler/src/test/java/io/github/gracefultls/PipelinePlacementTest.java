package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelPipelineException;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * SPEC "Pipeline": {@link GracefulTlsCloseHandler} sits right after an {@code SslHandler}, or fails at
 * {@code handlerAdded} and leaves the pipeline; it is not {@code @Sharable}: one instance per channel.
 */
class PipelinePlacementTest {

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
            assertThat(onlyEvent(pair.clientRecorder()).status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        }
    }
}
