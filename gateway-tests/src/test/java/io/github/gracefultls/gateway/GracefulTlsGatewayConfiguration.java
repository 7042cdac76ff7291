package io.github.gracefultls.gateway;

import io.github.gracefultls.reactor.ReactorNettyTlsClose;
import io.github.gracefultls.reactor.TlsClosure;
import io.github.gracefultls.testing.Tls;
import io.netty.handler.ssl.SslContext;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.reactor.netty.NettyReactiveWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.cloud.gateway.config.HttpClientCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The configuration that docs/spring-cloud-gateway.md shows: TLS on the gateway's frontend (its Reactor Netty
 * {@code HttpServer}) and on its upstream client (the {@code HttpClient} of Spring Cloud Gateway's routing filter),
 * each with {@link ReactorNettyTlsClose}: the handler right after Reactor Netty's {@code SslHandler}, and the HTTP
 * verdict after its HTTP/1.1 codec.
 *
 * <p>With {@code gateway-tests.graceful-tls=false} the same TLS is configured without the module: the "before" of
 * the docs' table. With {@code gateway-tests.tls-from-properties=true} the customizers only add the module, and
 * the TLS comes from Spring's properties ({@code server.ssl.*}, the gateway's {@code httpclient.ssl.*}). The test
 * certificates stand for the application's own.
 */
@Configuration(proxyBeanMethods = false)
public class GracefulTlsGatewayConfiguration {

    /** Every closure either side reported, for the tests to read. */
    static final Queue<TlsClosure> CLOSURES = new ConcurrentLinkedQueue<>();

    @Bean
    ReactorNettyTlsClose reactorNettyTlsClose() {
        return ReactorNettyTlsClose.builder().onClose(CLOSURES::add).build();
    }

    /** The frontend: TLS with the application's certificate, then the module. */
    @Bean
    WebServerFactoryCustomizer<NettyReactiveWebServerFactory> frontendTls(ReactorNettyTlsClose tlsClose,
            @Value("${gateway-tests.graceful-tls:true}") boolean gracefulTls,
            @Value("${gateway-tests.tls-from-properties:false}") boolean tlsFromProperties) {
        SslContext serverTls = Tls.serverContext(Tls.Provider.JDK, Tls.TLS_1_3);
        return factory -> factory.addServerCustomizers(server -> {
            var secured = tlsFromProperties ? server : server.secure(spec -> spec.sslContext(serverTls));
            return gracefulTls ? tlsClose.apply(secured) : secured;
        });
    }

    /** The upstream client: TLS trusting the upstream's CA, then the module. Runs after the gateway's own settings. */
    @Bean
    HttpClientCustomizer upstreamTls(ReactorNettyTlsClose tlsClose,
            @Value("${gateway-tests.graceful-tls:true}") boolean gracefulTls,
            @Value("${gateway-tests.tls-from-properties:false}") boolean tlsFromProperties) {
        SslContext clientTls = Tls.clientContext(Tls.Provider.JDK, Tls.TLS_1_3);
        return client -> {
            var secured = tlsFromProperties ? client : client.secure(spec -> spec.sslContext(clientTls));
            return gracefulTls ? tlsClose.apply(secured) : secured;
        };
    }
}
