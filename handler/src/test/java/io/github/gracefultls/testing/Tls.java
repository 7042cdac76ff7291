package io.github.gracefultls.testing;

import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.params.provider.Arguments;

import javax.net.ssl.SSLException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * Netty {@link SslContext}s for tests, built on {@link TestCertificates}, each with exactly one protocol
 * enabled. Contexts are cached per (provider, protocol, side) and shared by all tests of the JVM; they are
 * not reference counted ({@link SslProvider#OPENSSL}, not {@code OPENSSL_REFCNT}), so never release them.
 * <p>
 * {@link SslProvider#OPENSSL} requires netty-tcnative; it is asserted to be available, never skipped.
 */
public final class Tls {

    public static final String TLS_1_2 = "TLSv1.2";
    public static final String TLS_1_3 = "TLSv1.3";
    /** The protocols tests are parameterized over. */
    public static final List<String> PROTOCOLS = List.of(TLS_1_2, TLS_1_3);

    /** The providers tests are parameterized over. */
    public enum Provider {
        JDK(SslProvider.JDK),
        OPENSSL(SslProvider.OPENSSL);

        private final SslProvider sslProvider;

        Provider(SslProvider sslProvider) {
            this.sslProvider = sslProvider;
        }

        public SslProvider sslProvider() {
            return sslProvider;
        }
    }

    private record Key(SslProvider provider, String protocol, boolean server) {
    }

    private static final Map<Key, SslContext> CACHE = new ConcurrentHashMap<>();

    private Tls() {
    }

    /**
     * The four combinations JDK/OPENSSL x TLSv1.2/TLSv1.3 as {@code (SslProvider, String protocol)}, for
     * {@code @ParameterizedTest(name = "{0} {1}") @MethodSource("io.github.gracefultls.testing.Tls#providersAndProtocols")}.
     */
    public static Stream<Arguments> providersAndProtocols() {
        assertOpenSslAvailable();
        return Stream.of(Provider.values())
                .flatMap(p -> PROTOCOLS.stream().map(protocol -> Arguments.of(p.sslProvider(), protocol)));
    }

    /**
     * Each of {@code cases} with each of {@link #providersAndProtocols()}, as {@code (case, SslProvider, String
     * protocol)}: a case is typically a {@link org.junit.jupiter.api.Named}, which names it in the test's name.
     */
    public static Stream<Arguments> casesWithProvidersAndProtocols(Object... cases) {
        return Stream.of(cases).flatMap(c -> providersAndProtocols().map(a -> Arguments.of(c, a.get()[0], a.get()[1])));
    }

    /** Cached server context: test server certificate, only {@code protocol} enabled, no client auth. */
    public static SslContext serverContext(SslProvider provider, String protocol) {
        return CACHE.computeIfAbsent(new Key(provider, protocol, true),
                k -> build(serverContextBuilder(provider, protocol)));
    }

    /**
     * Cached client context: trusts only the test CA, only {@code protocol} enabled, <em>no hostname
     * verification</em> (so handlers created with {@code newHandler(alloc)}, without a peer host, work; such
     * handlers also never resume sessions, which keeps tests independent).
     */
    public static SslContext clientContext(SslProvider provider, String protocol) {
        return CACHE.computeIfAbsent(new Key(provider, protocol, false),
                k -> build(clientContextBuilder(provider, protocol)));
    }

    public static SslContext serverContext(Provider provider, String protocol) {
        return serverContext(provider.sslProvider(), protocol);
    }

    public static SslContext clientContext(Provider provider, String protocol) {
        return clientContext(provider.sslProvider(), protocol);
    }

    /** A fresh builder for a server context like {@link #serverContext}, to customize (not cached). */
    public static SslContextBuilder serverContextBuilder(SslProvider provider, String protocol) {
        checkArguments(provider, protocol);
        return SslContextBuilder.forServer(TestCertificates.serverKey(), TestCertificates.serverCertificateChain())
                .sslProvider(provider)
                .protocols(protocol);
    }

    /** A fresh builder for a client context like {@link #clientContext}, to customize (not cached). */
    public static SslContextBuilder clientContextBuilder(SslProvider provider, String protocol) {
        checkArguments(provider, protocol);
        return SslContextBuilder.forClient()
                .sslProvider(provider)
                .protocols(protocol)
                .trustManager(TestCertificates.caCertificate())
                .endpointIdentificationAlgorithm(null);
    }

    /** Fails (does not skip) if netty-tcnative's OpenSSL is not usable. */
    public static void assertOpenSslAvailable() {
        if (!OpenSsl.isAvailable()) {
            throw new AssertionError("OpenSSL (netty-tcnative) is not available", OpenSsl.unavailabilityCause());
        }
    }

    private static void checkArguments(SslProvider provider, String protocol) {
        if (!PROTOCOLS.contains(protocol)) {
            throw new IllegalArgumentException("unsupported protocol " + protocol + ", expected one of " + PROTOCOLS);
        }
        switch (provider) {
            case JDK:
                break;
            case OPENSSL:
                assertOpenSslAvailable();
                break;
            default:
                throw new IllegalArgumentException("unsupported provider " + provider + ", use JDK or OPENSSL");
        }
    }

    private static SslContext build(SslContextBuilder builder) {
        try {
            return builder.build();
        } catch (SSLException e) {
            throw new IllegalStateException("cannot build SslContext", e);
        }
    }
}
