package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.netty.channel.Channel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * StartTLS over real sockets, the way SMTP, IMAP, LDAP and FTPS use it: plaintext first; the server puts its
 * {@code SslHandler} in place mid-stream with {@code startTls} (its "go ahead" still leaves in plaintext) and the
 * client adds its own; the handler goes after each. Then one side calls {@code bye(SHUT_RDWR)}, the other replies
 * under {@link PeerClosePolicy#REUSE_TRANSPORT}, and the connection carries plaintext again, both ways.
 */
class StartTlsSocketTest extends PipelineShapeTestBase {

    static final String STARTTLS = "STARTTLS\r\n";
    static final String GO_AHEAD = "220 go ahead\r\n";

    static Stream<Arguments> cells() {
        return Tls.casesWithProvidersAndProtocols(named("the client says bye", true),
                named("the server says bye", false));
    }

    @ParameterizedTest(name = "{0}, {1} {2}")
    @MethodSource("cells")
    void startTlsThenByeReturnsToPlaintext(boolean clientBegins, SslProvider provider, String protocol)
            throws Exception {
        RecordingHandler serverRec = new RecordingHandler();
        RecordingHandler clientRec = new RecordingHandler();
        Server server = listen(ch -> ch.pipeline().addLast("rec", serverRec));
        Channel client = connect(server.address(), ch -> ch.pipeline().addLast("rec", clientRec));
        Channel serverCh = server.awaitAccepted();
        GracefulTlsCloseHandler serverHandler = GracefulTlsCloseHandler.builder()
                .peerClosePolicy(clientBegins ? PeerClosePolicy.REUSE_TRANSPORT : PeerClosePolicy.CLOSE).build();
        GracefulTlsCloseHandler clientHandler = GracefulTlsCloseHandler.builder()
                .peerClosePolicy(clientBegins ? PeerClosePolicy.CLOSE : PeerClosePolicy.REUSE_TRANSPORT).build();

        // Plaintext: the client asks for TLS; the server puts its TLS in place, then says go ahead, in plaintext.
        writeString(client, STARTTLS).get(AWAIT_SECONDS, SECONDS);
        serverRec.awaitBytes(STARTTLS.length(), AWAIT);
        onEventLoop(serverCh, () -> {
            SslHandler ssl = new SslHandler(Tls.serverContext(provider, protocol).newEngine(serverCh.alloc()), true);
            serverCh.pipeline().addBefore("rec", "ssl", ssl).addBefore("rec", "tls-close", serverHandler);
            return writeString(serverCh, GO_AHEAD);
        }).get(AWAIT_SECONDS, SECONDS);
        clientRec.awaitBytes(GO_AHEAD.length(), AWAIT);
        SslHandler clientSsl = onEventLoop(client, () -> {
            SslHandler ssl = Tls.clientContext(provider, protocol).newHandler(client.alloc());
            client.pipeline().addBefore("rec", "ssl", ssl).addBefore("rec", "tls-close", clientHandler);
            return ssl;
        });
        clientSsl.handshakeFuture().get(AWAIT_SECONDS, SECONDS);
        serverCh.pipeline().get(SslHandler.class).handshakeFuture().get(AWAIT_SECONDS, SECONDS);

        // Under TLS, one message each way: the handshake's tail (TLS 1.3 tickets) is behind both sides.
        writeString(client, "secret from the client").get(AWAIT_SECONDS, SECONDS);
        writeString(serverCh, "secret from the server").get(AWAIT_SECONDS, SECONDS);
        serverRec.awaitBytes((STARTTLS + "secret from the client").length(), AWAIT);
        clientRec.awaitBytes((GO_AHEAD + "secret from the server").length(), AWAIT);

        Channel initiator = clientBegins ? client : serverCh;
        Channel responder = clientBegins ? serverCh : client;
        RecordingHandler initiatorRec = clientBegins ? clientRec : serverRec;
        RecordingHandler responderRec = clientBegins ? serverRec : clientRec;
        GracefulTlsCloseHandler initiatorHandler = clientBegins ? clientHandler : serverHandler;
        GracefulTlsCloseHandler responderHandler = clientBegins ? serverHandler : clientHandler;
        String initiatorBefore = initiatorRec.receivedString();
        String responderBefore = responderRec.receivedString();

        Future<TlsCloseEvent> bye = initiatorHandler.bye(TlsCloseMode.SHUT_RDWR);
        TlsCloseEvent local = bye.get(AWAIT_SECONDS, SECONDS);
        assertEvent(local, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR);
        TlsCloseEvent remote = responderHandler.closeFuture().get(AWAIT_SECONDS, SECONDS);
        assertEvent(remote, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, TlsCloseInitiator.PEER, null);

        // Plaintext again, both ways, on the same connection.
        writeString(initiator, "plain after bye").get(AWAIT_SECONDS, SECONDS);
        responderRec.awaitBytes((responderBefore + "plain after bye").length(), AWAIT);
        writeString(responder, "plain reply").get(AWAIT_SECONDS, SECONDS);
        initiatorRec.awaitBytes((initiatorBefore + "plain reply").length(), AWAIT);
        assertThat(responderRec.receivedString()).isEqualTo(responderBefore + "plain after bye");
        assertThat(initiatorRec.receivedString()).isEqualTo(initiatorBefore + "plain reply");

        for (Channel ch : new Channel[] {client, serverCh}) {
            assertThat(ch.isActive()).as("%s still open", ch).isTrue();
            assertThat(onEventLoop(ch, () -> ch.pipeline().names())).as("%s back to plaintext", ch)
                    .containsExactly("rec", "DefaultChannelPipeline$TailContext#0");
        }
        for (RecordingHandler rec : new RecordingHandler[] {clientRec, serverRec}) {
            assertThat(rec.eventsOfType(TlsCloseEvent.class)).hasSize(1);
            assertThat(rec.exceptions()).isEmpty();
        }
    }
}
