package io.github.gracefultls.probe;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * A self-signed server certificate generated with the JDK alone: an EC P-256 key and an X.509 v3 certificate for
 * {@value #HOSTNAME} (SAN DNS {@value #HOSTNAME}, SAN IP 127.0.0.1), valid from an hour ago for a day.
 *
 * <p>Netty's {@code SelfSignedCertificate} is deprecated in 4.2 and, without Bouncy Castle, runs the {@code keytool}
 * binary (about a second); {@code netty-pkitesting} needs Bouncy Castle. The few DER structures an X.509 certificate
 * needs are written here instead (RFC 5280 §4.1), and signed with {@code SHA256withECDSA}.
 */
final class DemoCertificate {

    static final String HOSTNAME = "localhost";

    private static final byte[] LOOPBACK = {127, 0, 0, 1};
    private static final DateTimeFormatter UTC_TIME =
            DateTimeFormatter.ofPattern("yyMMddHHmmss'Z'").withZone(ZoneOffset.UTC);

    private final PrivateKey privateKey;
    private final X509Certificate certificate;

    private DemoCertificate(PrivateKey privateKey, X509Certificate certificate) {
        this.privateKey = privateKey;
        this.certificate = certificate;
    }

    PrivateKey privateKey() {
        return privateKey;
    }

    X509Certificate certificate() {
        return certificate;
    }

    /**
     * Generates a new key pair and certificate.
     */
    static DemoCertificate generate() throws GeneralSecurityException {
        SecureRandom random = new SecureRandom();
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"), random);
        KeyPair keyPair = generator.generateKeyPair();

        byte[] serial = new byte[16];
        random.nextBytes(serial);
        serial[0] = (byte) ((serial[0] & 0x3f) | 0x40); // positive, and no leading zero byte
        Instant now = Instant.now();
        byte[] name = sequence(set(sequence(oid(2, 5, 4, 3), utf8String(HOSTNAME))));
        byte[] signatureAlgorithm = sequence(oid(1, 2, 840, 10045, 4, 3, 2)); // ecdsa-with-SHA256
        byte[] extensions = explicit(3, sequence(
                extension(oid(2, 5, 29, 19), true, sequence()),                               // basicConstraints: not a CA
                extension(oid(2, 5, 29, 15), true, tlv(0x03, new byte[] {7, (byte) 0x80})),   // keyUsage: digitalSignature
                extension(oid(2, 5, 29, 37), false, sequence(oid(1, 3, 6, 1, 5, 5, 7, 3, 1))), // extKeyUsage: serverAuth
                extension(oid(2, 5, 29, 17), false, sequence(                                 // subjectAltName
                        tlv(0x82, HOSTNAME.getBytes(StandardCharsets.US_ASCII)),
                        tlv(0x87, LOOPBACK)))));
        byte[] tbsCertificate = sequence(
                explicit(0, tlv(0x02, new byte[] {2})), // version: v3
                tlv(0x02, serial),
                signatureAlgorithm,
                name,
                sequence(utcTime(now.minus(Duration.ofHours(1))), utcTime(now.plus(Duration.ofDays(1)))),
                name,
                keyPair.getPublic().getEncoded(),       // SubjectPublicKeyInfo, DER already
                extensions);

        Signature signer = Signature.getInstance("SHA256withECDSA");
        signer.initSign(keyPair.getPrivate(), random);
        signer.update(tbsCertificate);
        byte[] certificate = sequence(tbsCertificate, signatureAlgorithm, bitString(signer.sign()));

        X509Certificate x509 = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(certificate));
        x509.verify(keyPair.getPublic());
        return new DemoCertificate(keyPair.getPrivate(), x509);
    }

    private static byte[] extension(byte[] oid, boolean critical, byte[] value) {
        return critical
                ? sequence(oid, tlv(0x01, new byte[] {(byte) 0xff}), tlv(0x04, value))
                : sequence(oid, tlv(0x04, value));
    }

    private static byte[] sequence(byte[]... elements) {
        return tlv(0x30, concat(elements));
    }

    private static byte[] set(byte[]... elements) {
        return tlv(0x31, concat(elements));
    }

    private static byte[] explicit(int tag, byte[] element) {
        return tlv(0xa0 | tag, element);
    }

    private static byte[] utf8String(String s) {
        return tlv(0x0c, s.getBytes(StandardCharsets.UTF_8));
    }

    private static byte[] utcTime(Instant instant) {
        return tlv(0x17, UTC_TIME.format(instant).getBytes(StandardCharsets.US_ASCII));
    }

    private static byte[] bitString(byte[] bits) {
        byte[] content = new byte[bits.length + 1]; // first byte: no unused bits
        System.arraycopy(bits, 0, content, 1, bits.length);
        return tlv(0x03, content);
    }

    private static byte[] oid(int... arcs) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        writeBase128(out, arcs[0] * 40 + arcs[1]);
        for (int i = 2; i < arcs.length; i++) {
            writeBase128(out, arcs[i]);
        }
        return tlv(0x06, out.toByteArray());
    }

    private static void writeBase128(ByteArrayOutputStream out, int value) {
        int shift = 28;
        while (shift > 0 && (value >>> shift) == 0) {
            shift -= 7;
        }
        for (; shift > 0; shift -= 7) {
            out.write(0x80 | ((value >>> shift) & 0x7f));
        }
        out.write(value & 0x7f);
    }

    private static byte[] tlv(int tag, byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(content.length + 6);
        out.write(tag);
        int length = content.length;
        if (length < 0x80) {
            out.write(length);
        } else {
            int bytes = length < 0x100 ? 1 : length < 0x10000 ? 2 : length < 0x1000000 ? 3 : 4;
            out.write(0x80 | bytes);
            for (int i = bytes - 1; i >= 0; i--) {
                out.write(length >>> (8 * i));
            }
        }
        out.writeBytes(content);
        return out.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }
}
