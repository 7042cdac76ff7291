package io.github.gracefultls.testing;

import io.github.gracefultls.testing.TlsPair.Side;
import io.github.gracefultls.testing.TlsRecords.Parsed;
import io.github.gracefultls.testing.TlsRecords.Record;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static io.github.gracefultls.testing.Tls.TLS_1_2;
import static io.github.gracefultls.testing.Tls.TLS_1_3;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Tests of the test support ({@link TlsPair}, {@link Tls}, {@link TestCertificates}, {@link TlsRecords},
 * {@link RecordingHandler}), plus characterization of the SslHandler / SSLEngine close behaviour the library
 * relies on.
 */
class TlsPairTest {

    private static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";
    private static final byte[] PLAINTEXT = "PLAINTEXT AFTER CLOSE_NOTIFY\r\n".getBytes(StandardCharsets.US_ASCII);

    /**
     * Whether the server's engine answers a received close_notify with its own close_notify, without the
     * application asking. JDK TLS 1.3 treats close_notify as a half-close (RFC 8446 6.1) and does not reply.
     */
    static boolean engineRepliesCloseNotify(SslProvider provider, String protocol) {
        return !(provider == SslProvider.JDK && TLS_1_3.equals(protocol));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void handshakeSucceeds(SslProvider provider, String protocol) throws Exception {
        try (TlsPair pair = TlsPair.create(provider, protocol)) {
            pair.handshake();

            for (Side side : Side.values()) {
                SslHandler ssl = pair.sslHandler(side);
                assertThat(ssl.handshakeFuture().isSuccess()).as(side + " handshake").isTrue();
                assertThat(ssl.engine().getSession().getProtocol()).as(side + " protocol").isEqualTo(protocol);
                assertThat(pair.recorder(side).events()).as(side + " events")
                        .containsExactly(SslHandshakeCompletionEvent.SUCCESS);
                assertThat(pair.hasPendingOutbound(side)).as(side + " quiet after handshake").isFalse();
            }
            assertThat(pair.clientSsl().engine().getSession().getPeerCertificates()[0])
                    .isEqualTo(TestCertificates.server().getCertificate());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void applicationDataRoundTrips(SslProvider provider, String protocol) {
        byte[] request = randomBytes(40_000, 1); // more than two TLS records
        byte[] response = randomBytes(30_000, 2);
        try (TlsPair pair = TlsPair.create(provider, protocol)) {
            pair.handshake();

            pair.client().writeAndFlush(pair.client().alloc().buffer().writeBytes(request));
            pair.pump();
            pair.server().writeAndFlush(pair.server().alloc().buffer().writeBytes(response));
            pair.pump();

            assertThat(pair.serverRecorder().receivedBytes()).isEqualTo(request);
            assertThat(pair.clientRecorder().receivedBytes()).isEqualTo(response);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void recordCutInHalfIsReassembled(SslProvider provider, String protocol) {
        byte[] request = "hello, split world".getBytes(StandardCharsets.US_ASCII);
        try (TlsPair pair = TlsPair.create(provider, protocol)) {
            pair.handshake();
            pair.client().writeAndFlush(pair.client().alloc().buffer().writeBytes(request));
            int pending = pair.pendingOutboundBytes(Side.CLIENT);

            assertThat(pair.forward(Side.CLIENT, pending / 2)).isEqualTo(pending);

            assertThat(pair.serverRecorder().receivedBytes()).isEqualTo(request);
        }
    }

    /**
     * Engine characterization: a close_notify from the client (SslHandler.closeOutbound()) completes the server's
     * sslCloseFuture and fires SslCloseCompletionEvent.SUCCESS; whether the server's engine replies with its own
     * close_notify depends on provider and protocol ({@link #engineRepliesCloseNotify}).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeNotifyCompletesPeerCloseFutureAndReplyDependsOnEngine(SslProvider provider, String protocol) {
        try (TlsPair pair = TlsPair.create(provider, protocol)) {
            pair.handshake();

            assertThat(pair.clientSsl().closeOutbound().isSuccess()).isTrue();
            byte[] closeNotify = pair.drainOutbound(Side.CLIENT);
            assertSingleCloseNotifyRecord(closeNotify, protocol);
            pair.deliver(Side.SERVER, closeNotify);

            assertThat(pair.serverSsl().sslCloseFuture().isSuccess()).isTrue();
            assertThat(pair.serverRecorder().eventsOfType(SslCloseCompletionEvent.class))
                    .containsExactly(SslCloseCompletionEvent.SUCCESS);
            assertThat(pair.server().isActive()).as("SslHandler does not close the channel").isTrue();
            assertThat(pair.clientSsl().sslCloseFuture().isDone()).isFalse();

            boolean replied = pair.hasPendingOutbound(Side.SERVER);
            assertThat(replied).as("server engine replied close_notify by itself")
                    .isEqualTo(engineRepliesCloseNotify(provider, protocol));
            if (!replied) {
                // JDK TLS 1.3 half-close: the server application has to close its side explicitly.
                assertThat(pair.serverSsl().closeOutbound().isSuccess()).isTrue();
            }
            byte[] reply = pair.drainOutbound(Side.SERVER);
            if (provider == SslProvider.OPENSSL && TLS_1_3.equals(protocol)) {
                // BoringSSL defers the TLS 1.3 NewSessionTicket record(s) to the server's first write, which here
                // is the close_notify reply: expect [ticket record(s)..., close_notify].
                List<Record> records = TlsRecords.parse(reply);
                assertThat(records).hasSizeGreaterThan(1);
                assertSingleCloseNotifyRecord(TlsRecords.encode(records.get(records.size() - 1)), protocol);
            } else {
                assertSingleCloseNotifyRecord(reply, protocol);
            }
            pair.deliver(Side.CLIENT, reply);

            assertThat(pair.clientSsl().sslCloseFuture().isSuccess()).isTrue();
            assertThat(pair.clientRecorder().eventsOfType(SslCloseCompletionEvent.class))
                    .containsExactly(SslCloseCompletionEvent.SUCCESS);
            assertThat(pair.hasPendingOutbound(Side.CLIENT)).as("client does not answer the reply").isFalse();
            assertThat(pair.pump()).as("nothing more on the wire").isZero();
        }
    }

    /**
     * The mechanism the library relies on: a close_notify record followed by plaintext in ONE buffer; the server
     * application removes the SslHandler synchronously inside userEventTriggered(SslCloseCompletionEvent.SUCCESS);
     * the plaintext reaches the next handler intact (SslHandler, as a ByteToMessageDecoder, hands its remaining
     * cumulation to the next handler when removed).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void plaintextAfterCloseNotifyReachesNextHandlerWhenSslHandlerRemovedOnCloseEvent(
            SslProvider provider, String protocol) {
        RecordingHandler serverApp = new RecordingHandler();
        RemoveSslHandlerOnCloseNotify remover = new RemoveSslHandlerOnCloseNotify();
        try (TlsPair pair = TlsPair.builder(provider, protocol)
                .serverHandlers(remover, serverApp)
                .build()) {
            pair.handshake();
            pair.client().writeAndFlush(pair.client().alloc().buffer().writeBytes(new byte[] {'A', 'B'}));
            pair.pump();

            pair.clientSsl().closeOutbound();
            byte[] closeNotify = pair.drainOutbound(Side.CLIENT);
            assertSingleCloseNotifyRecord(closeNotify, protocol);
            pair.deliver(Side.SERVER, TlsRecords.concat(closeNotify, PLAINTEXT));

            assertThat(pair.server().pipeline().get(SslHandler.class)).isNull();
            // Where the engine replies, its close_notify was already written (not flushed) when the application saw
            // the event. SslHandler would flush it in channelReadComplete, but it was removed before that: the
            // reply stays unflushed until someone flushes the channel.
            boolean replies = engineRepliesCloseNotify(provider, protocol);
            assertThat(remover.pendingWriteBytesAtEvent > 0).as("reply written before the event").isEqualTo(replies);
            assertThat(pair.hasPendingOutbound(Side.SERVER)).as("reply not flushed yet").isFalse();
            pair.server().flush();
            assertThat(pair.hasPendingOutbound(Side.SERVER)).as("reply flushed").isEqualTo(replies);
            if (replies) {
                List<Record> reply = TlsRecords.parse(pair.drainOutbound(Side.SERVER));
                assertSingleCloseNotifyRecord(TlsRecords.encode(reply.get(reply.size() - 1)), protocol);
            }
            assertThat(pair.serverSsl().sslCloseFuture().isSuccess()).isTrue();
            assertThat(serverApp.receivedBytes()).isEqualTo(TlsRecords.concat(new byte[] {'A', 'B'}, PLAINTEXT));
            // The close event passes the app handler first; the plaintext follows once the removal completes.
            assertThat(serverApp.timeline()).hasSize(4);
            assertThat(serverApp.timeline().get(2)).isEqualTo(SslCloseCompletionEvent.SUCCESS);
            assertThat(((RecordingHandler.Read) serverApp.timeline().get(3)).bytes()).isEqualTo(PLAINTEXT);

            // Further plaintext is passed through as is.
            pair.deliver(Side.SERVER, "more".getBytes(StandardCharsets.US_ASCII));
            assertThat(serverApp.receivedString()).endsWith("more");
        }
    }

    /** Removes the SslHandler synchronously when the peer's close_notify was received, like a STARTTLS-undo. */
    private static final class RemoveSslHandlerOnCloseNotify extends ChannelInboundHandlerAdapter {
        long pendingWriteBytesAtEvent = -1;

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt == SslCloseCompletionEvent.SUCCESS) {
                pendingWriteBytesAtEvent = ctx.channel().unsafe().outboundBuffer().totalPendingWriteBytes();
                ctx.pipeline().remove(SslHandler.class);
            }
            ctx.fireUserEventTriggered(evt);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void recorderSeesChannelInactiveAfterCloseEvents(SslProvider provider, String protocol) {
        TlsPair pair = TlsPair.create(provider, protocol);
        try (pair) {
            pair.handshake();
            pair.client().close();
            pair.forward(Side.CLIENT);
        }
        assertThat(pair.clientRecorder().events()).last().isEqualTo(RecordingHandler.Marker.CHANNEL_INACTIVE);
        assertThat(pair.clientRecorder().isInactive()).isTrue();
        List<Object> serverEvents = pair.serverRecorder().events();
        assertThat(serverEvents).containsSubsequence(SslHandshakeCompletionEvent.SUCCESS,
                SslCloseCompletionEvent.SUCCESS, RecordingHandler.Marker.CHANNEL_INACTIVE);
    }

    @Test
    void timeIsControllable() {
        try (TlsPair pair = TlsPair.builder(Tls.clientContext(SslProvider.JDK, TLS_1_2),
                Tls.serverContext(SslProvider.JDK, TLS_1_2)).build()) {
            // The client's handshake timeout (default 10 s) was scheduled when its SslHandler was added.
            pair.freezeTime();
            pair.drainOutbound(Side.CLIENT); // the ClientHello is lost
            pair.advanceTimeBy(9, TimeUnit.SECONDS);
            assertThat(pair.clientSsl().handshakeFuture().isDone()).isFalse();

            pair.advanceTimeBy(2, TimeUnit.SECONDS);

            assertThat(pair.clientSsl().handshakeFuture().cause()).hasMessageContaining("handshake timed out");
            assertThat(pair.clientRecorder().eventsOfType(SslHandshakeCompletionEvent.class)).hasSize(1);
            assertThat(pair.clientRecorder().events()).last().isEqualTo(RecordingHandler.Marker.CHANNEL_INACTIVE);
        }
    }

    @Test
    void tlsRecordsParsesAndReportsTrailingBytes() {
        try (TlsPair pair = TlsPair.create(SslProvider.JDK, TLS_1_2)) {
            byte[] clientHello = pair.drainOutbound(Side.CLIENT);
            List<Record> records = TlsRecords.parse(clientHello);
            assertThat(records).hasSize(1);
            assertThat(records.get(0).isHandshake()).isTrue();
            assertThat(records.get(0).end()).isEqualTo(clientHello.length);
            assertThat(TlsRecords.encode(records.get(0))).isEqualTo(clientHello);

            Parsed withPlaintext = TlsRecords.parseLenient(TlsRecords.concat(clientHello, PLAINTEXT));
            assertThat(withPlaintext.records()).isEqualTo(records);
            assertThat(withPlaintext.trailing()).isEqualTo(PLAINTEXT);

            Parsed cut = TlsRecords.parseLenient(Arrays.copyOf(clientHello, clientHello.length - 1));
            assertThat(cut.records()).isEmpty();
            assertThat(cut.trailing()).hasSize(clientHello.length - 1);
            assertThatThrownBy(() -> TlsRecords.parse(cut.trailing())).isInstanceOf(IllegalArgumentException.class);

            byte[] plaintextAlert = {21, 3, 3, 0, 2, 1, 0};
            assertThat(TlsRecords.isPlaintextCloseNotify(TlsRecords.parse(plaintextAlert).get(0))).isTrue();
        }
    }

    @Test
    void certificatesAreForLocalhostAndWrittenAsPem(@TempDir Path dir) throws Exception {
        X509Certificate leaf = TestCertificates.server().getCertificate();
        assertThat(TestCertificates.server()).isSameAs(TestCertificates.server());
        List<Object> sans = new ArrayList<>();
        leaf.getSubjectAlternativeNames().forEach(san -> sans.add(san.get(1)));
        assertThat(sans).contains(TestCertificates.HOSTNAME, TestCertificates.IP_ADDRESS);
        leaf.verify(TestCertificates.caCertificate().getPublicKey());

        TestCertificates.PemFiles files = TestCertificates.writePemFiles(dir.resolve("pem"));

        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        try (InputStream in = Files.newInputStream(files.certificate())) {
            assertThat(factory.generateCertificate(in)).isEqualTo(leaf);
        }
        try (InputStream in = Files.newInputStream(files.caCertificate())) {
            assertThat(factory.generateCertificate(in)).isEqualTo(TestCertificates.caCertificate());
        }
        try (InputStream in = Files.newInputStream(files.certificateChain())) {
            assertThat(new ArrayList<Object>(factory.generateCertificates(in)))
                    .containsExactly(leaf, TestCertificates.caCertificate());
        }
        assertThat(Files.readString(files.privateKey())).startsWith("-----BEGIN PRIVATE KEY-----\n")
                .doesNotContain("\r");
    }

    /** TLS 1.2: one visible (encrypted) alert record. TLS 1.3: one opaque application_data record. */
    private static void assertSingleCloseNotifyRecord(byte[] bytes, String protocol) {
        List<Record> records = TlsRecords.parse(bytes);
        assertThat(records).as("close_notify bytes " + ByteBufUtil.hexDump(bytes)).hasSize(1);
        int expectedType = TLS_1_2.equals(protocol) ? TlsRecords.ALERT : TlsRecords.APPLICATION_DATA;
        assertThat(records.get(0).type()).as(records.toString()).isEqualTo(expectedType);
    }

    private static byte[] randomBytes(int length, long seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }
}
