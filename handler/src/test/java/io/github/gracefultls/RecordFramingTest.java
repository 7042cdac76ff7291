package io.github.gracefultls;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link RecordFraming} follows TLS record headers across reads; a framing followed by a {@link LateSslObserver}
 * goes on, in front of the SslHandler's cumulator, from where the observer was, even inside a record.
 */
class RecordFramingTest {

    /** An application data record header (type 23, TLS 1.2 on the wire) for a body of {@code length} bytes. */
    private static byte[] header(int length) {
        return new byte[] {23, 3, 3, (byte) (length >>> 8), (byte) length};
    }

    private static void follow(RecordFraming framing, byte[]... parts) {
        for (byte[] part : parts) {
            ByteBuf buf = Unpooled.wrappedBuffer(part);
            try {
                framing.follow(buf);
            } finally {
                buf.release();
            }
        }
    }

    @Test
    void takenOverInsideARecordGoesOnFromThere() {
        RecordFraming observed = new RecordFraming(null, true);
        follow(observed, header(300), new byte[100]); // 105 bytes of a 305-byte record
        assertThat(observed.partialRecordBytes(null)).isEqualTo(105);

        RecordFraming taken = new RecordFraming(null, observed);
        assertThat(taken.partialRecordBytes(null)).isEqualTo(105);
        follow(taken, new byte[200], new byte[] {23, 3}); // the rest of it, then 2 bytes of the next header
        assertThat(taken.partialRecordBytes(null)).isEqualTo(2);
        follow(taken, new byte[] {3, 0, 4}, new byte[4]);
        assertThat(taken.partialRecordBytes(null)).isZero();
    }

    @Test
    void takenOverInsideAHeaderGoesOnFromThere() {
        RecordFraming observed = new RecordFraming(null, true);
        follow(observed, new byte[] {22, 3, 3}); // 3 bytes of a handshake record's header
        RecordFraming taken = new RecordFraming(null, observed);
        follow(taken, new byte[] {0, 10}, new byte[6]);
        assertThat(taken.partialRecordBytes(null)).isEqualTo(11);
    }

    @Test
    void framingLostBeforeTheTakeOverStaysUnknown() {
        RecordFraming observed = new RecordFraming(null, true);
        follow(observed, "GET / HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII));
        RecordFraming taken = new RecordFraming(null, observed);
        follow(taken, header(1), new byte[1]);
        assertThat(taken.partialRecordBytes(null)).isEqualTo(-1);
    }
}
