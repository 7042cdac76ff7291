package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.Wire;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.OptionalSslHandler;
import io.netty.handler.ssl.SniCompletionEvent;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.AsyncMapping;
import io.netty.util.Mapping;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.function.Function;
import java.util.stream.Stream;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Named.named;

/**
 * The handler behind Netty's handlers that put their {@code SslHandler} in place only once the first bytes arrived,
 * over real sockets: {@link SniHandler} (with a mapping that answers at once, and with an asynchronous one) and
 * {@link OptionalSslHandler}. Our side is the server; it binds to the {@code SslHandler} when it appears, closes as
 * in the plain pipeline, and still says exactly where a truncation cut the stream. On plaintext through
 * {@code OptionalSslHandler} it stays out of the way.
 */
class LateSslHandlerSocketTest extends PipelineShapeTestBase {

    static final String ALPHA = "alpha.test";
    static final String BETA = "beta.test";

    /** The handler that puts the server's SslHandler in place, and the host name the client asks for. */
    enum Shape {
        SNI_ALPHA("SniHandler, alpha.test", ALPHA, false),
        SNI_BETA_ASYNC("SniHandler with an asynchronous lookup, beta.test", BETA, true),
        OPTIONAL_SSL("OptionalSslHandler", TestCertificates.HOSTNAME, false);

        final String description;
        final String host;
        final boolean asyncLookup;

        Shape(String description, String host, boolean asyncLookup) {
            this.description = description;
            this.host = host;
            this.asyncLookup = asyncLookup;
        }

        /** The handler before ours on the server, for {@code provider} and {@code protocol}. */
        ChannelHandler newHandler(SslProvider provider, String protocol) {
            if (this == OPTIONAL_SSL) {
                return new OptionalSslHandler(Tls.serverContext(provider, protocol));
            }
            Function<String, SslContext> byHost = h -> serverContext(BETA.equals(h) ? BETA : ALPHA, provider, protocol);
            if (!asyncLookup) {
                return new SniHandler((Mapping<String, SslContext>) byHost::apply);
            }
            // Answered later, from another thread: the SniHandler replaces itself outside of any read.
            AsyncMapping<String, SslContext> async = (h, promise) -> {
                GlobalEventExecutor.INSTANCE.execute(() -> promise.setSuccess(byHost.apply(h)));
                return promise;
            };
            return new SniHandler(async);
        }

        @Override
        public String toString() {
            return description;
        }
    }

    private static final Map<List<Object>, SslContext> SERVER_CONTEXTS = new ConcurrentHashMap<>();

    /** A server context with the certificate of {@code host}, cached as {@link Tls} caches its contexts. */
    static SslContext serverContext(String host, SslProvider provider, String protocol) {
        return SERVER_CONTEXTS.computeIfAbsent(List.of(host, provider, protocol), k -> {
            X509Bundle bundle = TestCertificates.serverFor(host);
            try {
                return Tls.serverContextBuilder(provider, protocol)
                        .keyManager(bundle.getKeyPair().getPrivate(), bundle.getCertificatePath())
                        .build();
            } catch (SSLException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    static Stream<Arguments> shapes() {
        return Tls.casesWithProvidersAndProtocols((Object[]) Shape.values());
    }

    /** Where the client's FIN, without close_notify, cuts its stream, behind which handler. */
    static Stream<Arguments> cuts() {
        return Tls.casesWithProvidersAndProtocols(
                named("SniHandler, at a record boundary", List.of(Shape.SNI_ALPHA, 0)),
                named("SniHandler, inside a record", List.of(Shape.SNI_ALPHA, 10)),
                named("SniHandler with an asynchronous lookup, inside a record", List.of(Shape.SNI_BETA_ASYNC, 17)),
                named("OptionalSslHandler, inside a record", List.of(Shape.OPTIONAL_SSL, 12)));
    }

    /** Our server: {@code wire}, the shape's handler, {@code tls-close}, {@code rec}. */
    static final class Ours {
        final Wire wire = new Wire();
        final GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        final RecordingHandler rec = new RecordingHandler();
        Server server;
        Channel channel;
    }

    Ours startOurs(Shape shape, SslProvider provider, String protocol) throws Exception {
        Ours ours = new Ours();
        ours.server = listen(ch -> ch.pipeline()
                .addLast("wire", ours.wire)
                .addLast("late-tls", shape.newHandler(provider, protocol))
                .addLast("tls-close", ours.handler)
                .addLast("rec", ours.rec));
        return ours;
    }

    /** A Netty client: {@code wire}, an SslHandler that asks for {@code host} by SNI, optionally ours, {@code rec}. */
    static final class Peer {
        final Wire wire = new Wire();
        final GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        final RecordingHandler rec = new RecordingHandler();
        Channel channel;

        SslHandler ssl() {
            return channel.pipeline().get(SslHandler.class);
        }
    }

    Peer connectPeer(Ours ours, String host, SslProvider provider, String protocol, boolean withHandler)
            throws Exception {
        Peer peer = new Peer();
        peer.channel = connect(ours.server.address(), ch -> {
            ch.pipeline().addLast("wire", peer.wire)
                    .addLast("ssl", Tls.clientContext(provider, protocol).newHandler(ch.alloc(), host, 443));
            if (withHandler) {
                ch.pipeline().addLast("tls-close", peer.handler);
            }
            ch.pipeline().addLast("rec", peer.rec);
        });
        peer.ssl().handshakeFuture().get(AWAIT_SECONDS, SECONDS);
        ours.channel = ours.server.awaitAccepted();
        // One message each way: the handshake's tail (TLS 1.3 tickets) is behind both sides.
        writeString(peer.channel, PING).get(AWAIT_SECONDS, SECONDS);
        ours.rec.awaitBytes(PING.length(), AWAIT);
        writeString(ours.channel, PING).get(AWAIT_SECONDS, SECONDS);
        peer.rec.awaitBytes(PING.length(), AWAIT);
        return peer;
    }

    @ParameterizedTest(name = "{0}, {1} {2}")
    @MethodSource("shapes")
    void bindsToTheSslHandlerPutInPlaceLaterAndClosesCleanly(Shape shape, SslProvider provider, String protocol)
            throws Exception {
        Ours ours = startOurs(shape, provider, protocol);
        Peer peer = connectPeer(ours, shape.host, provider, protocol, true);

        // The server answered with the certificate of the name asked for.
        X509Certificate served = (X509Certificate) peer.ssl().engine().getSession().getPeerCertificates()[0];
        assertThat(served.getSubjectX500Principal().getName()).startsWith("CN=" + shape.host + ",");
        if (shape != Shape.OPTIONAL_SSL) {
            SniCompletionEvent sni = ours.rec.awaitEvent(SniCompletionEvent.class, AWAIT);
            assertThat(sni.hostname()).isEqualTo(shape.host);
        }
        // Bound, and the framing followed since the first byte was handed over: nothing of ours on the read path.
        assertThat(onEventLoop(ours.channel, () -> ours.channel.pipeline().get(TransportObserver.class))).isNull();

        peer.channel.close().get(AWAIT_SECONDS, SECONDS);

        TlsCloseEvent local = peer.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(local, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        TlsCloseEvent remote = ours.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(remote, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);
        ours.rec.awaitInactive(AWAIT);
        assertThat(ours.rec.eventsOfType(TlsCloseEvent.class)).containsExactly(remote);
        assertThat(ours.rec.exceptions()).isEmpty();
        assertThat(peer.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0}, {1} {2}")
    @MethodSource("cuts")
    void truncationBehindALateSslHandlerSaysWhereItCut(List<Object> cut, SslProvider provider, String protocol)
            throws Exception {
        Shape shape = (Shape) cut.get(0);
        int cutAt = (Integer) cut.get(1);
        Ours ours = startOurs(shape, provider, protocol);
        Peer peer = connectPeer(ours, shape.host, provider, protocol, false);
        int receivedBefore = ours.rec.receivedBytes().length;

        if (cutAt == 0) {
            ((DuplexChannel) peer.channel).shutdownOutput().get(AWAIT_SECONDS, SECONDS); // FIN, no close_notify
        } else {
            onEventLoop(peer.channel, () -> peer.wire.truncateNextWriteTo = cutAt);
            writeString(peer.channel, "x".repeat(100)).get(AWAIT_SECONDS, SECONDS); // the first bytes, then FIN
        }

        ours.channel.closeFuture().get(AWAIT_SECONDS, SECONDS);
        TlsCloseEvent event = ours.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER, null);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.isInsideRecord()).as("%s", cause).isEqualTo(cutAt > 0);
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(cutAt);
        assertThat(cause).hasMessageContaining(cutAt > 0
                ? "inside a TLS record (" + cutAt + " bytes of it had arrived)" : "at a TLS record boundary");
        assertThat(ours.rec.receivedBytes()).hasSize(receivedBefore);
        ours.rec.awaitInactive(AWAIT);
        assertThat(ours.rec.eventsOfType(TlsCloseEvent.class)).containsExactly(event);
        assertThat(ours.rec.exceptions()).isEmpty();
    }

    /** Without ALLOW_HALF_CLOSURE the FIN closes the channel: behind SniHandler too, the cut record is counted. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void truncationBehindSniHandlerWithoutHalfClosureSaysWhereItCut(SslProvider provider, String protocol)
            throws Exception {
        int cutAt = 12;
        Ours ours = new Ours();
        ours.server = listen(ch -> ch.pipeline()
                .addLast("wire", ours.wire)
                .addLast("late-tls", Shape.SNI_ALPHA.newHandler(provider, protocol))
                .addLast("tls-close", ours.handler)
                .addLast("rec", ours.rec)
                .channel().config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false));
        Peer peer = connectPeer(ours, ALPHA, provider, protocol, false);

        onEventLoop(peer.channel, () -> peer.wire.truncateNextWriteTo = cutAt);
        writeString(peer.channel, "x".repeat(100)).get(AWAIT_SECONDS, SECONDS); // the first 12 bytes, then FIN

        TlsCloseEvent event = ours.handler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(event, TlsCloseStatus.TRUNCATED, TlsCloseInitiator.PEER, null);
        TlsTruncationException cause = truncation(event);
        assertThat(cause.undecodedBytes()).as("%s", cause).isEqualTo(cutAt);
        assertThat(cause).hasMessageContaining("inactive");
        ours.rec.awaitInactive(AWAIT);
        assertThat(ours.rec.exceptions()).isEmpty();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")
    void plaintextThroughOptionalSslHandlerIsLeftAlone(SslProvider provider, String protocol) throws Exception {
        Ours ours = startOurs(Shape.OPTIONAL_SSL, provider, protocol);
        RecordingHandler client = new RecordingHandler();
        Channel plain = connect(ours.server.address(), ch -> ch.pipeline().addLast("rec", client));
        ours.channel = ours.server.awaitAccepted();

        String hello = "HELLO over plaintext\r\n";
        writeString(plain, hello).get(AWAIT_SECONDS, SECONDS);
        ours.rec.awaitBytes(hello.length(), AWAIT);
        assertThat(ours.rec.receivedString()).isEqualTo(hello);
        writeString(ours.channel, "plain reply").get(AWAIT_SECONDS, SECONDS);
        client.awaitBytes("plain reply".length(), AWAIT);
        assertThat(client.receivedString()).isEqualTo("plain reply");
        // Nothing of ours is left on the read path; the handler itself stays, out of the way.
        assertThat(onEventLoop(ours.channel, () -> ours.channel.pipeline().get(TransportObserver.class))).isNull();
        assertThat(ours.channel.pipeline().get(SslHandler.class)).isNull();

        // close() passes straight through: no close_notify to send, no wait.
        ours.channel.close().get(AWAIT_SECONDS, SECONDS);
        ours.rec.awaitInactive(AWAIT);
        client.awaitEvent(ChannelInputShutdownEvent.class, AWAIT); // our FIN

        assertThatThrownBy(() -> ours.handler.closeFuture().get(AWAIT_SECONDS, SECONDS))
                .isInstanceOf(ExecutionException.class)
                .cause()
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("not TLS")
                .hasMessageContaining("OptionalSslHandler");
        Future<TlsCloseEvent> bye = ours.handler.bye(TlsCloseMode.SHUT_RDWR);
        assertThat(bye.await(AWAIT_SECONDS, SECONDS)).isTrue();
        assertThat(bye.cause()).isInstanceOf(IllegalStateException.class).hasMessageContaining("not TLS");
        assertThat(ours.rec.eventsOfType(TlsCloseEvent.class)).isEmpty();
        assertThat(ours.rec.exceptions()).isEmpty();
        assertThat(client.receivedString()).as("nothing but the reply: no TLS alert").isEqualTo("plain reply");
    }
}
