package io.github.gracefultls.examples.proxy;

import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

/** The proxy's TLS contexts: towards clients from PEM files or a self-signed certificate, towards the upstream. */
public final class ProxySslContexts {

    private ProxySslContexts() {
    }

    /** Returns a server context from a PEM certificate chain and a PEM (PKCS#8) private key. */
    public static SslContext server(Path cert, Path key, SslProvider provider, List<String> protocols)
            throws Exception {
        return SslContextBuilder.forServer(cert.toFile(), key.toFile())
                .sslProvider(provider).protocols(protocols).build();
    }

    /** Returns a server context with a certificate for {@code localhost}, generated now and valid for 30 days. */
    public static SslContext selfSignedServer(SslProvider provider, List<String> protocols) throws Exception {
        Instant now = Instant.now();
        X509Bundle bundle = new CertificateBuilder()
                .subject("CN=localhost")
                .addSanDnsName("localhost")
                .addSanIpAddress("127.0.0.1")
                .setIsCertificateAuthority(true) // its own root, as pkitesting wants of a self-signed one
                .setKeyUsage(true, CertificateBuilder.KeyUsage.digitalSignature,
                        CertificateBuilder.KeyUsage.keyCertSign)
                .addExtendedKeyUsageServerAuth()
                .notBefore(now.minus(1, ChronoUnit.HOURS))
                .notAfter(now.plus(30, ChronoUnit.DAYS))
                .ecp256()
                .buildSelfSigned();
        return SslContextBuilder.forServer(bundle.getKeyPair().getPrivate(), bundle.getCertificatePath())
                .sslProvider(provider).protocols(protocols).build();
    }

    /** Returns a client context that trusts any certificate if {@code insecure}, else the CAs in {@code ca} (PEM). */
    public static SslContext upstream(SslProvider provider, Path ca, boolean insecure) throws Exception {
        SslContextBuilder builder = SslContextBuilder.forClient().sslProvider(provider);
        if (insecure) {
            builder.trustManager(InsecureTrustManagerFactory.INSTANCE).endpointIdentificationAlgorithm(null);
        } else if (ca != null) {
            builder.trustManager(ca.toFile());
        }
        return builder.build();
    }
}
