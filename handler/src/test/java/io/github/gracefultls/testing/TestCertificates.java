package io.github.gracefultls.testing;

import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A test PKI, generated once per JVM (lazily and thread-safely, on first use): a self-signed CA and a
 * server certificate issued by it for {@value #HOSTNAME} (SAN DNS {@value #HOSTNAME}, SAN IP {@value #IP_ADDRESS}).
 * Keys are ECDSA P-256; certificates are valid from one day ago for seven days.
 * <p>
 * Netty {@code SslContext}s: use {@link #serverKey()} with {@link #serverCertificateChain()} (or
 * {@link #serverKeyManagerFactory()}) on the server, and trust {@link #caCertificate()} (or
 * {@link #trustManagerFactory()}) on the client. External peers (openssl, gnutls, nginx, python) get PEM
 * files via {@link #writePemFiles(Path)}.
 */
public final class TestCertificates {

    /** The DNS name in the server certificate's subject and SAN. */
    public static final String HOSTNAME = "localhost";
    /** The IP address in the server certificate's SAN. */
    public static final String IP_ADDRESS = "127.0.0.1";

    /** File names used by {@link #writePemFiles(Path)}. */
    public static final String CERT_FILE = "server-cert.pem";
    public static final String KEY_FILE = "server-key.pem";
    public static final String CA_FILE = "ca-cert.pem";
    public static final String CHAIN_FILE = "server-chain.pem";

    private TestCertificates() {
    }

    /** Initialization-on-demand holder: the JVM guarantees one, thread-safe, lazy initialization. */
    private static final class Holder {
        static final X509Bundle CA;
        static final X509Bundle SERVER;

        static {
            try {
                Instant now = Instant.now();
                CertificateBuilder base = new CertificateBuilder()
                        .ecp256()
                        .notBefore(now.minus(1, ChronoUnit.DAYS))
                        .notAfter(now.plus(7, ChronoUnit.DAYS));
                CA = base.copy()
                        .subject("CN=graceful-tls-close test CA, O=graceful-tls-close tests")
                        .setIsCertificateAuthority(true)
                        .setKeyUsage(true, CertificateBuilder.KeyUsage.keyCertSign,
                                CertificateBuilder.KeyUsage.cRLSign)
                        .buildSelfSigned();
                SERVER = base.copy()
                        .subject("CN=" + HOSTNAME + ", O=graceful-tls-close tests")
                        .addSanDnsName(HOSTNAME)
                        .addSanIpAddress(IP_ADDRESS)
                        .setKeyUsage(true, CertificateBuilder.KeyUsage.digitalSignature)
                        .addExtendedKeyUsageServerAuth()
                        .buildIssuedBy(CA);
            } catch (Exception e) {
                throw new ExceptionInInitializerError(e);
            }
        }
    }

    private static final Map<String, X509Bundle> BY_HOSTNAME = new ConcurrentHashMap<>();

    /**
     * A server bundle for another host name (subject CN and SAN DNS {@code hostname}), issued by the same CA, made
     * once per name per JVM: for servers that pick a certificate by SNI.
     */
    public static X509Bundle serverFor(String hostname) {
        return BY_HOSTNAME.computeIfAbsent(hostname, h -> {
            try {
                Instant now = Instant.now();
                return new CertificateBuilder()
                        .ecp256()
                        .notBefore(now.minus(1, ChronoUnit.DAYS))
                        .notAfter(now.plus(7, ChronoUnit.DAYS))
                        .subject("CN=" + h + ", O=graceful-tls-close tests")
                        .addSanDnsName(h)
                        .setKeyUsage(true, CertificateBuilder.KeyUsage.digitalSignature)
                        .addExtendedKeyUsageServerAuth()
                        .buildIssuedBy(Holder.CA);
            } catch (Exception e) {
                throw new IllegalStateException("cannot issue a certificate for " + h, e);
            }
        });
    }

    /** The self-signed CA (certificate and key pair). */
    public static X509Bundle ca() {
        return Holder.CA;
    }

    /** The server bundle: leaf certificate for {@value #HOSTNAME}, its key pair, and the CA as root. */
    public static X509Bundle server() {
        return Holder.SERVER;
    }

    /** The CA certificate, to be trusted by clients. */
    public static X509Certificate caCertificate() {
        return Holder.CA.getCertificate();
    }

    /** The server's private key. */
    public static PrivateKey serverKey() {
        return Holder.SERVER.getKeyPair().getPrivate();
    }

    /** The server's certificate chain, leaf first, without the CA (root). */
    public static X509Certificate[] serverCertificateChain() {
        return Holder.SERVER.getCertificatePath();
    }

    /** A new key manager factory holding the server key and chain. */
    public static KeyManagerFactory serverKeyManagerFactory() {
        try {
            return Holder.SERVER.toKeyManagerFactory();
        } catch (Exception e) {
            throw new IllegalStateException("cannot create key manager factory", e);
        }
    }

    /** A new trust manager factory trusting only the test CA. */
    public static TrustManagerFactory trustManagerFactory() {
        return Holder.CA.toTrustManagerFactory();
    }

    /**
     * Writes the PEM files (LF line endings) into {@code directory}, creating it if needed and overwriting
     * existing files: {@value #CERT_FILE} (server leaf certificate), {@value #KEY_FILE} (server private key,
     * unencrypted PKCS#8 "BEGIN PRIVATE KEY"), {@value #CA_FILE} (CA certificate) and {@value #CHAIN_FILE}
     * (leaf followed by CA, for peers that want a full chain).
     */
    public static PemFiles writePemFiles(Path directory) throws IOException {
        Files.createDirectories(directory);
        X509Bundle server = Holder.SERVER;
        PemFiles files = new PemFiles(directory.resolve(CERT_FILE), directory.resolve(KEY_FILE),
                directory.resolve(CA_FILE), directory.resolve(CHAIN_FILE));
        write(files.certificate(), server.getCertificatePathPEM());
        write(files.privateKey(), server.getPrivateKeyPEM());
        write(files.caCertificate(), Holder.CA.getCertificatePEM());
        write(files.certificateChain(), server.getCertificatePathPEM() + Holder.CA.getCertificatePEM());
        return files;
    }

    private static void write(Path file, String pem) throws IOException {
        Files.write(file, pem.replace("\r\n", "\n").getBytes(StandardCharsets.US_ASCII));
    }

    /**
     * Paths written by {@link #writePemFiles(Path)}.
     *
     * @param certificate      server leaf certificate (PEM)
     * @param privateKey       server private key (PEM, PKCS#8, unencrypted)
     * @param caCertificate    CA certificate (PEM), for clients to trust
     * @param certificateChain server leaf followed by the CA certificate (PEM)
     */
    public record PemFiles(Path certificate, Path privateKey, Path caCertificate, Path certificateChain) {
    }
}
