package io.github.gracefultls.probe;

import io.github.gracefultls.testing.TestCertificates;

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
 * The test server key as GnuTLS 3.7 reads it. It rejects the JDK's PKCS#8 encoding of an EC key ("ASN1 parser:
 * Element was not found"), whose inner {@code ECPrivateKey} lacks the optional public key; a SEC 1
 * {@code EC PRIVATE KEY} (RFC 5915) with the curve and the public key, as {@code openssl ec} writes, works.
 * (integration-tests has the same helper; the handler's test-jar would be the place to share it.)
 */
final class GnutlsKey {

    /** OID 1.2.840.10045.3.1.7, prime256v1. */
    private static final byte[] P256 = {0x06, 0x08, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x03, 0x01, 0x07};

    private GnutlsKey() {
    }

    static Path write(Path directory) throws IOException {
        ECPrivateKey key = (ECPrivateKey) TestCertificates.serverKey();
        ECPublicKey publicKey = (ECPublicKey) TestCertificates.server().getCertificate().getPublicKey();
        ByteArrayOutputStream point = new ByteArrayOutputStream();
        point.write(0); // BIT STRING: no unused bits
        point.write(4); // uncompressed point
        point.writeBytes(fixed(publicKey.getW().getAffineX()));
        point.writeBytes(fixed(publicKey.getW().getAffineY()));

        ByteArrayOutputStream ecPrivateKey = new ByteArrayOutputStream();
        ecPrivateKey.writeBytes(new byte[] {0x02, 0x01, 0x01});   // version 1
        ecPrivateKey.writeBytes(tlv(0x04, fixed(key.getS())));    // privateKey
        ecPrivateKey.writeBytes(tlv(0xa0, P256));                 // [0] parameters
        ecPrivateKey.writeBytes(tlv(0xa1, tlv(0x03, point.toByteArray()))); // [1] publicKey
        String pem = "-----BEGIN EC PRIVATE KEY-----\n"
                + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(tlv(0x30, ecPrivateKey.toByteArray()))
                + "\n-----END EC PRIVATE KEY-----\n";
        Path file = directory.resolve("server-key-sec1.pem");
        Files.writeString(file, pem, StandardCharsets.US_ASCII);
        return file;
    }

    /** A P-256 field element as 32 big-endian bytes. */
    private static byte[] fixed(BigInteger n) {
        byte[] bytes = n.toByteArray();
        byte[] out = new byte[32];
        int length = Math.min(bytes.length, 32);
        System.arraycopy(bytes, bytes.length - length, out, 32 - length, length);
        return out;
    }

    /** Short-form DER: every element here is under 128 bytes. */
    private static byte[] tlv(int tag, byte[] value) {
        byte[] out = new byte[value.length + 2];
        out[0] = (byte) tag;
        out[1] = (byte) value.length;
        System.arraycopy(value, 0, out, 2, value.length);
        return out;
    }
}
