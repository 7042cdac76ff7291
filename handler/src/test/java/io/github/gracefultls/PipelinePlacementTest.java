package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsPair;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipelineException;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.AbstractSniHandler;
import io.netty.handler.ssl.OptionalSslHandler;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.Mapping;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Named.named;

/**
 * SPEC "Pipeline": {@link GracefulTlsCloseHandler} sits right after an {@code SslHandler}, or after a handler that puts
 * one in place later ({@code SniHandler}, any {@code AbstractSniHandler}, {@code OptionalSslHandler}), or fails at
 * {@code handlerAdded} and leaves the pipeline; it is not {@code @Sharable}: one instance per channel.
 */
class PipelinePlacementTest {

    /** Netty's handlers that put an SslHandler in their place once the first bytes arrived. */
    static Stream<Arguments> handlersThatPutAnSslHandlerInPlaceLater() {
        SslContext context = Tls.serverContext(SslProvider.JDK, Tls.TLS_1_3);
        Supplier<ChannelHandler> sni = () -> new SniHandler((Mapping<String, SslContext>) host -> context);
        Supplier<ChannelHandler> optional = () -> new OptionalSslHandler(context);
        Supplier<ChannelHandler> abstractSni = () -> new AbstractSniHandler<SslContext>() {
            @Override
            protected Future<SslContext> lookup(ChannelHandlerContext ctx, String hostname) {
                return ctx.executor().newSucceededFuture(context);
            }

            @Override
            protected void onLookupComplete(ChannelHandlerContext ctx, String hostname, Future<SslContext> f) {
                ctx.pipeline().replace(this, "ssl", f.getNow().newHandler(ctx.alloc()));
            }
        };
        return Stream.of(Arguments.of(named("SniHandler", sni)), Arguments.of(named("OptionalSslHandler", optional)),
                Arguments.of(named("an application's AbstractSniHandler", abstractSni)));
    }

    @ParameterizedTest(name = "after {0}")
    @MethodSource("handlersThatPutAnSslHandlerInPlaceLater")
    void acceptedAfterAHandlerThatPutsAnSslHandlerInPlaceLater(Supplier<ChannelHandler> late) {
        EmbeddedChannel ch = new EmbeddedChannel();
        try {
            GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
            ch.pipeline().addLast("late-tls", late.get()).addLast("tls-close", handler);
            ch.checkException();

            assertThat(ch.pipeline().context(handler)).isNotNull();
            // The record framing is followed from the first byte, before the handler that puts the SslHandler.
            assertThat(ch.pipeline().first()).isInstanceOf(LateSslObserver.class);
            assertThat(ch.pipeline().names()).hasSize(4).element(1).isEqualTo("late-tls");
            assertThat(handler.closeFuture().isDone()).isFalse();
        } finally {
            ch.finishAndReleaseAll();
        }
    }

    @Test
    void plaintextThroughOptionalSslHandlerLeavesTheHandlerOutOfTheWay() {
        EmbeddedChannel ch = new EmbeddedChannel();
        try {
            GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
            RecordingHandler rec = new RecordingHandler();
            ch.pipeline().addLast("optional-tls", new OptionalSslHandler(Tls.serverContext(SslProvider.JDK,
                    Tls.TLS_1_3))).addLast("tls-close", handler).addLast("rec", rec);
            Future<TlsCloseEvent> outcome = handler.closeFuture();

            ch.writeInbound(Unpooled.copiedBuffer("GET / HTTP/1.1\r\n\r\n", StandardCharsets.US_ASCII));

            assertThat(rec.receivedString()).isEqualTo("GET / HTTP/1.1\r\n\r\n");
            assertThat(ch.pipeline().names()).containsExactly("tls-close", "rec",
                    "DefaultChannelPipeline$TailContext#0");
            assertThat(outcome.isDone()).isTrue();
            assertThat(outcome.cause()).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("not TLS");
            ChannelFuture closed = ch.close();
            assertThat(closed.isSuccess()).as("close() passes straight through").isTrue();
            assertThat(rec.eventsOfType(TlsCloseEvent.class)).isEmpty();
            assertThat(rec.exceptions()).isEmpty();
        } finally {
            ch.finishAndReleaseAll();
        }
    }

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
                    .hasMessageContaining("needs an SslHandler before it")
                    .hasMessageContaining("SniHandler")
                    .hasMessageContaining("AbstractSniHandler")
                    .hasMessageContaining("OptionalSslHandler");
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
