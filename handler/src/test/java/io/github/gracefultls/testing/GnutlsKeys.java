package io.github.gracefultls.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.ECPublicKey;
import java.util.Base64;

/**
 * The server key in a form GnuTLS 3.7 reads. GnuTLS 3.7.9 rejects the PKCS#8 EC key written by
 * {@link TestCertificates#writePemFiles} ("ASN1 parser: Element was not found"): the JDK encodes the inner
 * {@code ECPrivateKey} without its optional public key, which GnuTLS requires. SEC 1 ({@code EC PRIVATE KEY}) with
 * the curve and the public key, as {@code openssl ec} writes it, works.
 */
public final class GnutlsKeys {

    /** DER of the OID 1.2.840.10045.3.1.7 (prime256v1). */
    private static final byte[] P256_OID = {0x06, 0x08, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x03, 0x01, 0x07};

    private GnutlsKeys() {
    }

    /** Writes the server's P-256 key as a SEC 1 "EC PRIVATE KEY" with curve and public key; returns the file. */
    public static Path writeSec1ServerKey(Path directory) throws IOException {
        ECPrivateKey key = (ECPrivateKey) TestCertificates.serverKey();
        ECPublicKey pub = (ECPublicKey) TestCertificates.server().getCertificate().getPublicKey();
        if (key.getParams().getCurve().getField().getFieldSize() != 256) {
            throw new IllegalStateException("expected a P-256 test key");
        }
        ByteArrayOutputStream point = new ByteArrayOutputStream();
        point.write(0x00); // no unused bits in the BIT STRING
        point.write(0x04); // uncompressed point
        point.writeBytes(unsigned(pub.getW().getAffineX(), 32));
        point.writeBytes(unsigned(pub.getW().getAffineY(), 32));

        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(new byte[] {0x02, 0x01, 0x01}); // version 1
        body.writeBytes(tlv(0x04, unsigned(key.getS(), 32))); // privateKey
        body.writeBytes(tlv(0xa0, P256_OID)); // [0] parameters
        body.writeBytes(tlv(0xa1, tlv(0x03, point.toByteArray()))); // [1] publicKey
        byte[] der = tlv(0x30, body.toByteArray());

        String pem = "-----BEGIN EC PRIVATE KEY-----\n"
                + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END EC PRIVATE KEY-----\n";
        Path file = directory.resolve("server-key-sec1.pem");
        Files.writeString(file, pem, StandardCharsets.US_ASCII);
        return file;
    }

    private static byte[] tlv(int tag, byte[] value) {
        if (value.length > 127) {
            throw new IllegalArgumentException("short DER lengths only");
        }
        byte[] out = new byte[2 + value.length];
        out[0] = (byte) tag;
        out[1] = (byte) value.length;
        System.arraycopy(value, 0, out, 2, value.length);
        return out;
    }

    private static byte[] unsigned(BigInteger n, int length) {
        byte[] bytes = n.toByteArray();
        byte[] out = new byte[length];
        int copy = Math.min(bytes.length, length);
        System.arraycopy(bytes, bytes.length - copy, out, length - copy, copy);
        return out;
    }
}
