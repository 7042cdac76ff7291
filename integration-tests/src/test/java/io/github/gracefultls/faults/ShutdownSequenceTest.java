package io.github.gracefultls.faults;

import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.faults.FaultRig.Op;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsRecords;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.Transport;
import io.netty.buffer.Unpooled;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * BoringSSL's shutdown cases (its test runner's {@code Shutdown} tests) that the other fault classes lack, against
 * {@code close()}, {@code bye(SHUT_RDWR)}, {@code shutdownOutput()} and a closure the peer begins, on both providers
 * and TLS 1.2 and 1.3: an unclean shutdown (bare FIN) at every record boundary of a multi-record exchange that ends
 * with the peer's close_notify; a real, encrypted fatal alert from the peer's engine where its close_notify belongs;
 * empty application-data records and a {@code user_canceled} warning before the close_notify. The peer builds its
 * records with its own {@link SSLEngine} (for the records no API sends, the JDK's record layer: {@link
 * JdkRecordLayer}), below its {@code SslHandler}, so that the test decides exactly which of them go out.
 *
 * <p>Findings: the JDK's TLS 1.3 reader fails on an empty application-data record; BoringSSL fails after 32 in a row;
 * a fatal alert received while no closure of ours is under way is reported with initiator {@code LOCAL} although
 * {@code mode()} is null ({@link #encryptedFatalAlertInsteadOfCloseNotify} fails for {@code PEER} until the handler
 * says {@code PEER} there).
 */
class ShutdownSequenceTest extends FaultPeerTestBase {

    /** The peer's application records before its close_notify: three, of these sizes. */
    private static final int[] MESSAGES = {100, 200, 300};

    static Stream<Arguments> boundariesAndOps() {
        Tls.assertOpenSslAvailable();
        List<Arguments> out = new ArrayList<>();
        for (Tls.Provider p : Tls.Provider.values()) {
            for (String protocol : Tls.PROTOCOLS) {
                for (Op op : Op.values()) {
                    // 0..3: the FIN after that many data records; 4: after the close_notify as well (the control).
                    IntStream.rangeClosed(0, MESSAGES.length + 1).forEach(k -> out.add(
                            Arguments.of(Transport.NIO, p.sslProvider(), protocol, op, k)));
                }
            }
        }
        return out.stream();
    }

    static Stream<Arguments> nioOps() {
        return allOps().filter(a -> a.get()[0] == Transport.NIO);
    }

    /** Wraps {@code plaintext} (or, when null, the close_notify) with the peer's engine: one or more records. */
    private static byte[] wrap(SSLEngine engine, byte[] plaintext) {
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize() * 4);
        try {
            if (plaintext == null) {
                engine.closeOutbound();
                while (!engine.isOutboundDone()) {
                    SSLEngineResult r = engine.wrap(ByteBuffer.allocate(0), out);
                    if (r.bytesProduced() == 0) {
                        break;
                    }
                }
            } else {
                ByteBuffer in = ByteBuffer.wrap(plaintext);
                while (in.hasRemaining()) {
                    engine.wrap(in, out);
                }
            }
        } catch (SSLException e) {
            throw new AssertionError("the peer's engine could not wrap", e);
        }
        out.flip();
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        return bytes;
    }

    /**
     * The peer's records: {@link #MESSAGES} (one record each), then its close_notify; it sends the first {@code k}
     * of them, then a bare FIN. Every op, every boundary: {@code TRUNCATED} at a TLS record boundary, every byte of the
     * records that came delivered (or, under SHUT_RDWR, discarded and counted); after all of them, clean.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}, FIN after record {4}")
    @MethodSource("boundariesAndOps")
    void finAtEveryRecordBoundaryOfTheLastExchange(Transport transport, SslProvider provider, String protocol, Op op,
                                                   int k) throws Exception {
        AtomicReference<List<TlsRecords.Record>> sent = new AtomicReference<>();
        Setup[] setup = new Setup[1];
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> {
            SSLEngine engine = peer.ssl().engine();
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            for (int size : MESSAGES) {
                all.writeBytes(wrap(engine, TlsSockets.payload(size)));
            }
            all.writeBytes(wrap(engine, null));
            List<TlsRecords.Record> records = TlsRecords.parse(all.toByteArray());
            sent.set(records);
            byte[] prefix = Arrays.copyOf(all.toByteArray(), k == 0 ? 0 : records.get(k - 1).end());
            wire.writeRaw(prefix).addListener(x -> wire.fin());
        }, s -> setup[0] = s);

        List<TlsRecords.Record> records = sent.get();
        assertThat(records).as("the peer's records: one per message, then its close_notify")
                .hasSize(MESSAGES.length + 1);
        int dataRecords = Math.min(k, MESSAGES.length);
        long dataBytes = Arrays.stream(MESSAGES).limit(dataRecords).sum();
        if (k > MESSAGES.length) {
            assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
        } else {
            assertStatus(event, TlsCloseStatus.TRUNCATED, initiator(op));
            assertThat(event.cause()).isInstanceOf(TlsTruncationException.class);
            TlsTruncationException cause = (TlsTruncationException) event.cause();
            assertThat(cause.isInsideRecord()).as("%s", cause).isFalse();
            assertThat(cause.undecodedBytes()).as("%s", cause).isZero();
            assertThat(cause.getMessage()).as("%s", cause).endsWith(", at a TLS record boundary");
        }
        byte[] expected = new byte[0];
        for (int i = 0; i < dataRecords; i++) {
            expected = TlsRecords.concat(expected, TlsSockets.payload(MESSAGES[i]));
        }
        assertThat(expected).hasSize((int) dataBytes);
        assertData(setup[0], op, event, expected);
    }

    // ---- records no engine sends through its API, from the JDK's own record layer (JdkRecordLayer)

    /** How many empty records: a few, and one more than BoringSSL's limit of consecutive empty records (32). */
    static Stream<Arguments> emptyRecordCounts() {
        return nioOps().flatMap(a -> Stream.of(3, 33).map(n -> {
            Object[] args = Arrays.copyOf(a.get(), a.get().length + 1);
            args[args.length - 1] = n;
            return Arguments.of(args);
        }));
    }

    /**
     * A JDK peer sends {@code records} (built with its engine, on its event loop, below its SslHandler) and then
     * nothing more: the last of them its close_notify. Returns the event; {@code sent} gets the records.
     */
    private TlsCloseEvent jdkPeerSends(SslProvider provider, String protocol, Op op,
                                       java.util.function.Function<SSLEngine, byte[]> records,
                                       AtomicReference<List<TlsRecords.Record>> sent, Setup[] setup)
            throws Exception {
        peerProvider = SslProvider.JDK;
        return peerActs(Transport.NIO, provider, protocol, op, (wire, peer) -> {
            byte[] bytes = records.apply(peer.ssl().engine());
            sent.set(TlsRecords.parse(bytes));
            wire.writeRaw(bytes);
        }, s -> setup[0] = s);
    }

    /**
     * Data, then {@code empties} empty application-data records, then the close_notify. BoringSSL's own limit is
     * 32 empty records in a row (its {@code kMaxEmptyRecords}); the JDK has none on TLS 1.2 and, on TLS 1.3, fails
     * at the first one.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}, {4} empty records")
    @MethodSource("emptyRecordCounts")
    void emptyApplicationDataRecordsBeforeCloseNotify(Transport transport, SslProvider provider, String protocol,
                                                      Op op, int empties) throws Exception {
        byte[] data = TlsSockets.payload(MESSAGES[0]);
        AtomicReference<List<TlsRecords.Record>> sent = new AtomicReference<>();
        Setup[] setup = new Setup[1];
        TlsCloseEvent event = jdkPeerSends(provider, protocol, op, engine -> {
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            all.writeBytes(wrap(engine, data));
            try {
                for (int i = 0; i < empties; i++) {
                    JdkRecordLayer.queueEmptyApplicationData(engine);
                    all.writeBytes(JdkRecordLayer.drain(engine));
                }
            } catch (SSLException e) {
                throw new AssertionError(e);
            }
            all.writeBytes(wrap(engine, null));
            return all.toByteArray();
        }, sent, setup);

        List<TlsRecords.Record> records = sent.get();
        assertThat(records).as("data, %s empty records, close_notify", empties).hasSize(empties + 2);
        // AES-GCM, nothing encrypted but: TLS 1.2, the 8-byte explicit nonce and the 16-byte tag; TLS 1.3, the inner
        // content type, the JDK's 16 bytes of zero padding and the tag.
        int emptyLength = Tls.TLS_1_3.equals(protocol) ? 1 + 16 + 16 : 8 + 16;
        assertThat(records.subList(1, empties + 1)).allSatisfy(r -> {
            assertThat(r.type()).isEqualTo(TlsRecords.APPLICATION_DATA);
            assertThat(r.length()).as("an empty record's length").isEqualTo(emptyLength);
        });
        if (provider == SslProvider.JDK && Tls.TLS_1_3.equals(protocol)) {
            // The JDK's TLS 1.3 reader rejects an empty TLSInnerPlaintext content, which RFC 8446 §5.4 allows
            // (SSLCipher's padding scan stops one byte short): our engine fails, a local failure.
            assertStatus(event, TlsCloseStatus.FAILED, TlsCloseInitiator.LOCAL);
            assertThat(event.cause()).as("%s", event).isInstanceOf(SSLException.class)
                    .hasMessageContaining("Incorrect inner plaintext: no content type");
        } else if (provider == SslProvider.OPENSSL && empties > 32) {
            // BoringSSL's limit: our engine fails. A local failure, whoever was closing.
            assertStatus(event, TlsCloseStatus.FAILED, TlsCloseInitiator.LOCAL);
            assertThat(event.cause()).as("%s", event).isInstanceOf(SSLException.class)
                    .hasMessageContaining("TOO_MANY_EMPTY_FRAGMENTS");
        } else {
            assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
        }
        assertData(setup[0], op, event, data);
    }

    /**
     * Data, a warning alert {@code user_canceled}, then the close_notify: what the JDK's {@code SSLSocket.close()}
     * sends on TLS 1.3 (see the interop JdkSslSocketTest), here on TLS 1.2 as well and against every closure.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("nioOps")
    void userCanceledWarningBeforeCloseNotifyIsClean(Transport transport, SslProvider provider, String protocol,
                                                     Op op) throws Exception {
        byte[] data = TlsSockets.payload(MESSAGES[0]);
        AtomicReference<List<TlsRecords.Record>> sent = new AtomicReference<>();
        Setup[] setup = new Setup[1];
        TlsCloseEvent event = jdkPeerSends(provider, protocol, op, engine -> {
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            all.writeBytes(wrap(engine, data));
            try {
                JdkRecordLayer.queueWarningAlert(engine, JdkRecordLayer.USER_CANCELED);
                all.writeBytes(JdkRecordLayer.drain(engine));
            } catch (SSLException e) {
                throw new AssertionError(e);
            }
            all.writeBytes(wrap(engine, null));
            return all.toByteArray();
        }, sent, setup);

        List<TlsRecords.Record> records = sent.get();
        assertThat(records).as("data, user_canceled, close_notify").hasSize(3);
        assertThat(records.get(1).type()).isEqualTo(
                Tls.TLS_1_3.equals(protocol) ? TlsRecords.APPLICATION_DATA : TlsRecords.ALERT);
        assertStatus(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, initiator(op));
        assertData(setup[0], op, event, data);
    }

    /**
     * The peer's engine fails (a record it cannot decrypt) and sends its encrypted fatal alert, then closes: no
     * close_notify. Never clean.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @MethodSource("nioOps")
    void encryptedFatalAlertInsteadOfCloseNotify(Transport transport, SslProvider provider, String protocol, Op op)
            throws Exception {
        byte[] bogus = new byte[TlsRecords.HEADER_LENGTH + 48];
        bogus[0] = TlsRecords.APPLICATION_DATA;
        bogus[1] = 3;
        bogus[2] = 3;
        bogus[4] = 48;
        TlsCloseEvent event = peerActs(transport, provider, protocol, op, (wire, peer) -> {
            // To the peer's SslHandler, past the deaf wire; the read-complete makes it flush its alert.
            wire.ctx.fireChannelRead(Unpooled.wrappedBuffer(bogus));
            wire.ctx.fireChannelReadComplete();
        });
        assertThat(event.isClean()).as("%s", event).isFalse();
        // The alert that our engine received: the peer's engine sent it.
        assertThat(event.cause()).as("%s", event).isInstanceOf(SSLException.class)
                .hasMessageContaining(provider == SslProvider.JDK ? "bad_record_mac" : "BAD_RECORD_MAC");
        // A fatal alert received: FAILED. Begun by the peer's alert when no closure of ours was under way (the
        // SPEC: mode() is null only when the peer began).
        assertStatus(event, TlsCloseStatus.FAILED, initiator(op));
    }
}
