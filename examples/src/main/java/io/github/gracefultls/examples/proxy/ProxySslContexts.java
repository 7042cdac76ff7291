package io.github.gracefultls.examples.proxy;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ReferenceCountUtil;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;

import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;

/** The proxy's TLS contexts: towards clients from PEM files or a self-signed certificate, towards the upstream. */
public final class ProxySslContexts {

    private ProxySslContexts() {
    }

    /**
     * Checks that the provider will negotiate each of {@code protocols}, and says which it would if not: under the
     * JDK provider, a protocol the JDK knows but disables ({@code jdk.tls.disabledAlgorithms} in
     * {@code java.security}: TLSv1 and TLSv1.1 by default) would otherwise be accepted here and fail every handshake;
     * under OPENSSL, only the protocols Netty enables by default are usable.
     *
     * @throws IllegalArgumentException with a one-line message for people, if one cannot be negotiated
     */
    public static void checkProtocols(SslProvider provider, List<String> protocols) {
        List<String> supported;
        List<String> enabled = null;
        if (provider == SslProvider.JDK) {
            SSLContext context;
            try {
                context = SSLContext.getInstance("TLS");
                context.init(null, null, null);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("the JDK has no TLS context", e);
            }
            supported = List.of(context.getSupportedSSLParameters().getProtocols());
            // The defaults are the supported protocols that jdk.tls.disabledAlgorithms leaves enabled.
            enabled = List.of(context.getDefaultSSLParameters().getProtocols());
        } else {
            if (!OpenSsl.isAvailable()) {
                throw new IllegalArgumentException("the openssl provider is not available: "
                        + OpenSsl.unavailabilityCause());
            }
            SSLEngine engine = null;
            try {
                SslContext context = SslContextBuilder.forClient().sslProvider(provider).build();
                engine = context.newEngine(ByteBufAllocator.DEFAULT);
                supported = List.of(engine.getSupportedProtocols());
                // BoringSSL knows TLSv1 and TLSv1.1, but no handshake succeeds with them under Netty's default
                // cipher suites (openssl s_client -tls1_1: handshake_failure): only what Netty enables is usable.
                enabled = List.of(engine.getEnabledProtocols());
            } catch (SSLException e) {
                throw new IllegalStateException("cannot create an OpenSSL context", e);
            } finally {
                ReferenceCountUtil.release(engine);
            }
        }
        List<String> usable = new ArrayList<>(enabled);
        usable.remove("SSLv2Hello"); // a hello format, not a protocol to offer
        for (String protocol : protocols) {
            if (!supported.contains(protocol)) {
                throw new IllegalArgumentException(protocol + " is not a protocol the " + provider
                        + " provider knows (it can use " + String.join(", ", usable) + ")");
            }
            if (!enabled.contains(protocol)) {
                throw new IllegalArgumentException(protocol + (provider == SslProvider.JDK
                        ? " is disabled in this JDK (jdk.tls.disabledAlgorithms in java.security); it enables "
                        : " is not enabled by the " + provider + " provider; it enables ")
                        + String.join(", ", usable));
            }
        }
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
