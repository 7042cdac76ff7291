package io.github.gracefultls.benchmarks;

import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import javax.net.ssl.SSLException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@link SslContext}s for the benchmarks: a self-signed ECDSA P-256 certificate made once per JVM with
 * {@code netty-pkitesting}, one protocol enabled per context, contexts cached per (provider, protocol, side). The
 * client trusts any certificate ({@link InsecureTrustManagerFactory}: {@link ClosureAtScale}'s server runs in
 * another JVM, with a certificate of its own) and skips host name checks: the benchmarks measure closures, not
 * identities.
 */
final class TlsContexts {

    static final String TLS_1_2 = "TLSv1.2";
    static final String TLS_1_3 = "TLSv1.3";

    private record Key(SslProvider provider, String protocol, boolean server) {
    }

    private static final Map<Key, SslContext> CACHE = new ConcurrentHashMap<>();

    private TlsContexts() {
    }

    private static final class Certificate {
        static final X509Bundle SERVER;

        static {
            try {
                Instant now = Instant.now();
                SERVER = new CertificateBuilder()
                        .ecp256()
                        .subject("CN=localhost, O=graceful-tls-close benchmarks")
                        .addSanDnsName("localhost")
                        .addSanIpAddress("127.0.0.1")
                        .notBefore(now.minus(1, ChronoUnit.DAYS))
                        .notAfter(now.plus(7, ChronoUnit.DAYS))
                        .setIsCertificateAuthority(true)
                        .buildSelfSigned();
            } catch (Exception e) {
                throw new ExceptionInInitializerError(e);
            }
        }
    }

    /** Parses "jdk" or "openssl" (any case). */
    static SslProvider provider(String name) {
        switch (name.toUpperCase(Locale.ROOT)) {
            case "JDK":
                return SslProvider.JDK;
            case "OPENSSL":
                return SslProvider.OPENSSL;
            default:
                throw new IllegalArgumentException("provider: " + name + " (expected: JDK or OPENSSL)");
        }
    }

    /** Parses "1.2", "1.3", "TLSv1.2" or "TLSv1.3". */
    static String protocol(String name) {
        String p = name.startsWith("TLSv") ? name : "TLSv" + name;
        if (!p.equals(TLS_1_2) && !p.equals(TLS_1_3)) {
            throw new IllegalArgumentException("protocol: " + name + " (expected: TLSv1.2 or TLSv1.3)");
        }
        return p;
    }

    static SslContext server(SslProvider provider, String protocol) {
        return CACHE.computeIfAbsent(new Key(provider, protocol, true), TlsContexts::build);
    }

    static SslContext client(SslProvider provider, String protocol) {
        return CACHE.computeIfAbsent(new Key(provider, protocol, false), TlsContexts::build);
    }

    private static SslContext build(Key key) {
        if (key.provider() != SslProvider.JDK) {
            OpenSsl.ensureAvailability();
        }
        try {
            X509Bundle cert = Certificate.SERVER;
            SslContextBuilder builder = key.server()
                    ? SslContextBuilder.forServer(cert.getKeyPair().getPrivate(), cert.getCertificatePath())
                    : SslContextBuilder.forClient().trustManager(InsecureTrustManagerFactory.INSTANCE)
                            .endpointIdentificationAlgorithm(null);
            return builder.sslProvider(key.provider()).protocols(key.protocol()).build();
        } catch (SSLException e) {
            throw new IllegalStateException("cannot build the " + key + " SslContext", e);
        }
    }
}
