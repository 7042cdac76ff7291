package io.github.gracefultls.testing;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Parses raw TLS records (5-byte header: content type, legacy version, length; then the body).
 * <p>
 * What can be seen on the wire:
 * <ul>
 *   <li><b>TLS 1.2</b>: the outer content type is the real one, so a {@code close_notify} is visible as an
 *       {@linkplain #ALERT alert} record. After the handshake the alert's body is encrypted, so its level and
 *       description (close_notify vs. a fatal alert) are <em>not</em> visible; only unencrypted alerts (2-byte
 *       body, e.g. sent during a failed handshake) expose them via {@link Record#alertDescription()}.</li>
 *   <li><b>TLS 1.3</b>: every record after the ServerHello is {@linkplain #APPLICATION_DATA application_data}
 *       (type 23, version 0x0303); the real type (alert, handshake, data) is encrypted. A {@code close_notify}
 *       cannot be told apart from data: tests can only count records (e.g. "exactly one record was sent, and
 *       nothing after it"). Beware: an OPENSSL (BoringSSL) TLS 1.3 server sends its deferred NewSessionTicket
 *       record(s) with its first write after the handshake, e.g. right before its close_notify.</li>
 * </ul>
 */
public final class TlsRecords {

    public static final int HEADER_LENGTH = 5;
    public static final int CHANGE_CIPHER_SPEC = 20;
    public static final int ALERT = 21;
    public static final int HANDSHAKE = 22;
    public static final int APPLICATION_DATA = 23;
    /** Alert description of close_notify (only visible in unencrypted alerts). */
    public static final int CLOSE_NOTIFY = 0;
    /** Maximum body length: 2^14 plaintext + 2048 expansion (RFC 5246 6.2.3). */
    public static final int MAX_BODY_LENGTH = (1 << 14) + 2048;

    private TlsRecords() {
    }

    /**
     * One TLS record.
     *
     * @param offset  where its header starts in the parsed bytes
     * @param type    content type (20..23)
     * @param version legacy record version, e.g. 0x0303
     * @param body    the (usually encrypted) record body, {@code length} bytes
     */
    public record Record(int offset, int type, int version, byte[] body) {

        public int length() {
            return body.length;
        }

        /** Header plus body length. */
        public int encodedLength() {
            return HEADER_LENGTH + body.length;
        }

        /** Offset just past this record. */
        public int end() {
            return offset + encodedLength();
        }

        public boolean isAlert() {
            return type == ALERT;
        }

        public boolean isApplicationData() {
            return type == APPLICATION_DATA;
        }

        public boolean isHandshake() {
            return type == HANDSHAKE;
        }

        /** An alert whose 2-byte body is readable (not encrypted). */
        public boolean isPlaintextAlert() {
            return isAlert() && body.length == 2 && (body[0] == 1 || body[0] == 2);
        }

        /** The alert description of a {@linkplain #isPlaintextAlert() plaintext alert}, else -1. */
        public int alertDescription() {
            return isPlaintextAlert() ? body[1] & 0xFF : -1;
        }

        @Override
        public String toString() {
            return typeName(type) + "(" + type + ") v" + Integer.toHexString(version) + " len=" + body.length
                    + " @" + offset;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Record r && r.offset == offset && r.type == type && r.version == version
                    && Arrays.equals(r.body, body);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * (31 * offset + type) + version) + Arrays.hashCode(body);
        }
    }

    /**
     * Records parsed from bytes, and what followed the last complete record.
     *
     * @param records  complete records, in order
     * @param trailing bytes after the last complete record: an incomplete record, or non-TLS bytes (e.g. plaintext
     *                 appended after a close_notify); parsing stops at the first header that is not a TLS header
     */
    public record Parsed(List<Record> records, byte[] trailing) {

        public boolean hasTrailing() {
            return trailing.length > 0;
        }

        @Override
        public String toString() {
            return records + (trailing.length > 0 ? " + " + trailing.length + " trailing bytes" : "");
        }
    }

    /** Splits {@code bytes} into complete records; fails if anything else (partial or non-TLS data) remains. */
    public static List<Record> parse(byte[] bytes) {
        Parsed parsed = parseLenient(bytes);
        if (parsed.hasTrailing()) {
            throw new IllegalArgumentException("not a whole number of TLS records: " + parsed);
        }
        return parsed.records();
    }

    /** Splits {@code bytes} into complete records, returning whatever follows the last one as trailing bytes. */
    public static Parsed parseLenient(byte[] bytes) {
        List<Record> records = new ArrayList<>();
        int offset = 0;
        while (bytes.length - offset >= HEADER_LENGTH) {
            int type = bytes[offset] & 0xFF;
            int version = (bytes[offset + 1] & 0xFF) << 8 | bytes[offset + 2] & 0xFF;
            int length = (bytes[offset + 3] & 0xFF) << 8 | bytes[offset + 4] & 0xFF;
            if (!isTlsHeader(type, version, length) || bytes.length - offset - HEADER_LENGTH < length) {
                break;
            }
            byte[] body = Arrays.copyOfRange(bytes, offset + HEADER_LENGTH, offset + HEADER_LENGTH + length);
            records.add(new Record(offset, type, version, body));
            offset += HEADER_LENGTH + length;
        }
        return new Parsed(List.copyOf(records), Arrays.copyOfRange(bytes, offset, bytes.length));
    }

    /** Number of complete records in {@code bytes} (see {@link #parse}). */
    public static int count(byte[] bytes) {
        return parse(bytes).size();
    }

    public static boolean isAlert(Record record) {
        return record.isAlert();
    }

    public static boolean isApplicationData(Record record) {
        return record.isApplicationData();
    }

    /** A plaintext close_notify alert. Encrypted alerts (every close_notify after a handshake) cannot be identified. */
    public static boolean isPlaintextCloseNotify(Record record) {
        return record.alertDescription() == CLOSE_NOTIFY;
    }

    /** The bytes of {@code record}, header included. */
    public static byte[] encode(Record record) {
        byte[] out = new byte[record.encodedLength()];
        out[0] = (byte) record.type();
        out[1] = (byte) (record.version() >>> 8);
        out[2] = (byte) record.version();
        out[3] = (byte) (record.length() >>> 8);
        out[4] = (byte) record.length();
        System.arraycopy(record.body(), 0, out, HEADER_LENGTH, record.length());
        return out;
    }

    /** Concatenates byte arrays, e.g. a close_notify record and plaintext that follows it. */
    public static byte[] concat(byte[]... parts) {
        int length = 0;
        for (byte[] part : parts) {
            length += part.length;
        }
        byte[] out = new byte[length];
        int offset = 0;
        for (byte[] part : parts) {
            System.arraycopy(part, 0, out, offset, part.length);
            offset += part.length;
        }
        return out;
    }

    public static String typeName(int type) {
        switch (type) {
            case CHANGE_CIPHER_SPEC:
                return "change_cipher_spec";
            case ALERT:
                return "alert";
            case HANDSHAKE:
                return "handshake";
            case APPLICATION_DATA:
                return "application_data";
            default:
                return "unknown";
        }
    }

    private static boolean isTlsHeader(int type, int version, int length) {
        return type >= CHANGE_CIPHER_SPEC && type <= APPLICATION_DATA
                && (version >>> 8) == 3 && (version & 0xFF) <= 4
                && length <= MAX_BODY_LENGTH;
    }
}
