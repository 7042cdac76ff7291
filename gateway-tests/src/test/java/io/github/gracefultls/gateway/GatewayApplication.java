package io.github.gracefultls.gateway;

import io.github.gracefultls.testing.TestCertificates;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.reactive.context.ReactiveWebServerApplicationContext;
import org.springframework.cloud.gateway.route.RouteLocator;
import org.springframework.cloud.gateway.route.builder.RouteLocatorBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;

/** A gateway with one route, every path to {@code gateway-tests.upstream}, and {@link GracefulTlsGatewayConfiguration}. */
@SpringBootConfiguration
@EnableAutoConfiguration
@Import(GracefulTlsGatewayConfiguration.class)
public class GatewayApplication {

    @Bean
    RouteLocator routes(RouteLocatorBuilder builder, @Value("${gateway-tests.upstream}") String upstream) {
        return builder.routes().route("upstream", r -> r.path("/**").uri(upstream)).build();
    }

    /** A running gateway on an ephemeral port. */
    record Running(ConfigurableApplicationContext context, int port) implements AutoCloseable {
        @Override
        public void close() {
            context.close();
        }
    }

    /**
     * Starts a gateway in front of {@code upstream} (an https URI), with or without the module, its TLS from
     * {@link GracefulTlsGatewayConfiguration}'s customizers.
     */
    static Running start(String upstream, boolean gracefulTls) {
        return start(upstream, "gateway-tests.graceful-tls=" + gracefulTls);
    }

    /** Starts a gateway with the module, its TLS from Spring's properties with the PEM files in {@code pem}. */
    static Running startWithTlsProperties(String upstream, TestCertificates.PemFiles pem) {
        return start(upstream, "gateway-tests.graceful-tls=true", "gateway-tests.tls-from-properties=true",
                "server.ssl.certificate=file:" + pem.certificateChain(),
                "server.ssl.certificate-private-key=file:" + pem.privateKey(),
                "spring.cloud.gateway.server.webflux.httpclient.ssl.trusted-x509-certificates=file:"
                        + pem.caCertificate());
    }

    private static Running start(String upstream, String... properties) {
        ConfigurableApplicationContext context = new SpringApplicationBuilder(GatewayApplication.class)
                .web(WebApplicationType.REACTIVE)
                .properties("server.port=0", "server.address=127.0.0.1", "spring.main.banner-mode=off",
                        "gateway-tests.upstream=" + upstream)
                .properties(properties)
                .run();
        int port = ((ReactiveWebServerApplicationContext) context).getWebServer().getPort();
        return new Running(context, port);
    }
}
