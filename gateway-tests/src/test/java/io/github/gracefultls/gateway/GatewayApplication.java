package io.github.gracefultls.gateway;

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

    /** Starts a gateway in front of {@code upstream} (an https URI), with or without the module. */
    static Running start(String upstream, boolean gracefulTls) {
        ConfigurableApplicationContext context = new SpringApplicationBuilder(GatewayApplication.class)
                .web(WebApplicationType.REACTIVE)
                .properties("server.port=0", "server.address=127.0.0.1", "spring.main.banner-mode=off",
                        "gateway-tests.upstream=" + upstream, "gateway-tests.graceful-tls=" + gracefulTls)
                .run();
        int port = ((ReactiveWebServerApplicationContext) context).getWebServer().getPort();
        return new Running(context, port);
    }
}
