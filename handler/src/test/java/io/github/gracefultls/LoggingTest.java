package io.github.gracefultls;

import io.github.gracefultls.PairTestSupport.Fixture;
import io.github.gracefultls.testing.LogCapture;
import io.github.gracefultls.testing.Tls;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.ChannelOutputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;

import static io.github.gracefultls.PairTestSupport.onlyEvent;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * What {@link GracefulTlsCloseHandler} logs through Netty's {@code InternalLoggerFactory}: every outcome at debug,
 * and a warning for each misuse it can see. Misuse needs real sockets ({@code DuplexChannel}), over NIO.
 */
class LoggingTest {

    /** Bound for every wait on what should come at once: far from any stall of a loaded machine. */
    private static final long AWAIT_SECONDS = 30;
    private static final String PROTOCOL = Tls.TLS_1_2; // the JDK engine replies close_notify by itself

    private static EventLoopGroup group;
    /** Closed after each test; accepted channels are added on the event loop. */
    private final List<Channel> channels = new CopyOnWriteArrayList<>();

    @BeforeAll
    @SuppressWarnings("deprecation") // NioEventLoopGroup: deprecated in Netty 4.2, the form 4.1 has too
    static void startEventLoop() {
        group = new NioEventLoopGroup(1);
    }

    @AfterAll
    static void stopEventLoop() throws InterruptedException {
        assertThat(group.shutdownGracefully(0, AWAIT_SECONDS, SECONDS).await(2 * AWAIT_SECONDS, SECONDS)).isTrue();
    }

    @AfterEach
    void closeChannels() throws InterruptedException {
        for (Channel ch : channels) {
            ch.close().await(AWAIT_SECONDS, SECONDS);
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = TlsCloseStatus.class, names = {"CLOSE_NOTIFY_RECEIVED", "TIMED_OUT", "TRUNCATED"})
    void eachOutcomeIsLoggedAtDebug(TlsCloseStatus status) {
        try (LogCapture log = LogCapture.of(GracefulTlsCloseHandler.class, Level.FINE);
             Fixture f = Fixture.of(SslProvider.JDK, PROTOCOL, new GracefulTlsCloseHandler(),
                     new GracefulTlsCloseHandler()).handshake()) {
            switch (status) {
                case CLOSE_NOTIFY_RECEIVED:
                    f.client().pipeline().close();
                    f.pair.pump();
                    break;
                case TIMED_OUT:
                    f.client().pipeline().close(); // EmbeddedChannel.close() would cancel the timers
                    f.pair.advanceTimeBy(GracefulTlsCloseHandler.DEFAULT_CLOSE_NOTIFY_READ_TIMEOUT_MILLIS,
                            TimeUnit.MILLISECONDS);
                    break;
                case TRUNCATED:
                    f.server().pipeline().firstContext().close(); // below the SslHandler: no close_notify
                    f.client().pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
                    f.client().runPendingTasks();
                    break;
                default:
                    throw new AssertionError(status);
            }

            TlsCloseEvent event = onlyEvent(f.clientApp());
            assertThat(event.status()).isEqualTo(status);
            assertThat(log.messages(Level.FINE)).anySatisfy(m -> assertThat(m)
                    .contains(f.client().id().asShortText())
                    .endsWith("] " + event));
        }
    }

    @Test
    void shutdownOutputWithoutAllowHalfClosureWarns() throws Exception {
        try (LogCapture log = LogCapture.of(GracefulTlsCloseHandler.class, Level.WARNING)) {
            GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
            Channel client = connect(false, handler, null);

            TlsCloseEvent event = handler.shutdownOutput().get(AWAIT_SECONDS, SECONDS);

            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(log.messages(Level.WARNING)).singleElement().satisfies(m -> assertThat(m)
                    .contains(client.id().asShortText())
                    .contains("shutdownOutput() on a channel whose ALLOW_HALF_CLOSURE is off"));
        }
    }

    @Test
    void shutdownOutputWithAllowHalfClosureDoesNotWarn() throws Exception {
        try (LogCapture log = LogCapture.of(GracefulTlsCloseHandler.class, Level.WARNING)) {
            GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
            connect(true, handler, null);

            TlsCloseEvent event = handler.shutdownOutput().get(AWAIT_SECONDS, SECONDS);

            assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
            assertThat(log.messages(Level.WARNING)).isEmpty();
        }
    }

    @Test
    void directShutdownOutputWithoutCloseNotifyWarns() throws Exception {
        try (LogCapture log = LogCapture.of(GracefulTlsCloseHandler.class, Level.WARNING)) {
            CompletableFuture<Void> outputShutdown = new CompletableFuture<>();
            Channel client = connect(true, new GracefulTlsCloseHandler(), outputShutdown);

            ((DuplexChannel) client).shutdownOutput().get(AWAIT_SECONDS, SECONDS); // bypasses the pipeline
            outputShutdown.get(AWAIT_SECONDS, SECONDS);

            assertThat(log.messages(Level.WARNING)).singleElement().satisfies(m -> assertThat(m)
                    .contains(client.id().asShortText())
                    .contains("TCP output was shut down without close_notify"));
        }
    }

    /**
     * Connects a client with {@code SslHandler}, {@code handler}, and a handler that completes {@code outputShutdown}
     * (if given) on {@link ChannelOutputShutdownEvent}, to a server with a bare {@code SslHandler}; waits for the
     * handshake.
     */
    private Channel connect(boolean allowHalfClosure, GracefulTlsCloseHandler handler,
                            CompletableFuture<Void> outputShutdown) throws Exception {
        Channel server = new ServerBootstrap()
                .group(group)
                .channel(NioServerSocketChannel.class)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        channels.add(ch);
                        ch.pipeline().addLast(Tls.serverContext(SslProvider.JDK, PROTOCOL).newHandler(ch.alloc()));
                    }
                })
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))
                .sync().channel();
        channels.add(server);
        Channel client = new Bootstrap()
                .group(group)
                .channel(NioSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, allowHalfClosure)
                .handler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast("ssl", Tls.clientContext(SslProvider.JDK, PROTOCOL)
                                .newHandler(ch.alloc()));
                        ch.pipeline().addLast("tls-close", handler);
                        ch.pipeline().addLast("output-shutdown", new ChannelInboundHandlerAdapter() {
                            @Override
                            public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                                if (evt instanceof ChannelOutputShutdownEvent && outputShutdown != null) {
                                    outputShutdown.complete(null);
                                }
                                ctx.fireUserEventTriggered(evt);
                            }
                        });
                    }
                })
                .connect(server.localAddress())
                .sync().channel();
        channels.add(client);
        client.pipeline().get(SslHandler.class).handshakeFuture().get(AWAIT_SECONDS, SECONDS);
        return client;
    }
}
