package io.github.gracefultls.proxy;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseRelay;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.examples.proxy.TlsTerminatingProxy;
import io.github.gracefultls.testing.TestCertificates;
import io.github.gracefultls.testing.Tls;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.GlobalEventExecutor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * 1,000 concurrent connections through {@link TlsTerminatingProxy} (in-process, OpenSSL, TLSv1.3), Netty clients and
 * a Netty upstream, with four endings mixed in a seeded random order (each side ending first): every ending is seen
 * on the far side as what it was, every byte arrives, and nothing is left open. Once with each relay's two channels
 * on one event loop, once on two (the relay hops between them).
 */
class ProxyLoadTest {

    private static final int CONNECTIONS = 1000;
    /** Bound on the whole run (1,000 handshakes and closures): a wait, far from what a loaded machine needs. */
    private static final long DEADLINE_SECONDS = 120;
    /** The clients' read timeout: the proxy answers their close_notify, and beats it however loaded the machine. */
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(30);
    private static final int RESPONSE = 16 * 1024;
    /** The endings' order; any seed gives 250 of each. */
    private static final long SEED = 20261205L;

    /** How a connection ends; chosen by its index. */
    enum Ending {
        /** The upstream responds, then FIN: the client gets the response and close_notify. */
        UPSTREAM_ENDS,
        /** The client sends its request, then FIN without close_notify: the upstream gets a reset. */
        CLIENT_TRUNCATES,
        /** The upstream sends part of a response, then RST: the client sees a truncation. */
        UPSTREAM_RESETS,
        /** The client reads the response, then close() (close_notify): the upstream gets FIN, then ends too. */
        CLIENT_ENDS
    }

    private final Map<Integer, CompletableFuture<String>> upstreamViews = new ConcurrentHashMap<>();
    private final Map<Integer, CompletableFuture<Void>> requestsSeen = new ConcurrentHashMap<>();
    /** Held, so that the level set below sticks. */
    private final Logger proxyLog = Logger.getLogger(TlsTerminatingProxy.class.getName());

    @ParameterizedTest(name = "backend on {0}")
    @ValueSource(strings = {"the frontend's loop", "a loop of its own"})
    void thousandConcurrentConnectionsEndAsTheirFarSideDid(String backendLoop) throws Exception {
        boolean separateLoops = backendLoop.startsWith("a loop");
        List<Ending> endings = new ArrayList<>(CONNECTIONS);
        for (int i = 0; i < CONNECTIONS; i++) {
            endings.add(Ending.values()[i % Ending.values().length]);
        }
        Collections.shuffle(endings, new Random(SEED));
        Path pki = Files.createTempDirectory("proxy-load-");
        TestCertificates.PemFiles pem = TestCertificates.writePemFiles(pki);
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        ChannelGroup upstreamChannels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        ChannelGroup clientChannels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
        BlockingQueue<TlsCloseRelay.Outcome> outcomes = new LinkedBlockingQueue<>();
        Level level = proxyLog.getLevel();
        proxyLog.setLevel(Level.SEVERE); // 500 of the 1,000 outcomes are (rightly) not clean: no log line each
        Channel upstream = null;
        InProcessProxy proxy = null;
        try {
            upstream = new ServerBootstrap()
                    .group(group)
                    .channel(NioServerSocketChannel.class)
                    .option(ChannelOption.SO_BACKLOG, CONNECTIONS)
                    .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            upstreamChannels.add(ch);
                            ch.pipeline().addLast(new Upstream());
                        }
                    })
                    .bind(InetAddress.getLoopbackAddress(), 0).sync().channel();
            proxy = InProcessProxy.start(outcomes::add, pem, SslProvider.OPENSSL, Tls.TLS_1_3,
                    ((InetSocketAddress) upstream.localAddress()).getPort(), false, separateLoops);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(DEADLINE_SECONDS);

            List<Client> clients = new ArrayList<>(CONNECTIONS);
            for (int i = 0; i < CONNECTIONS; i++) {
                requestsSeen.put(i, new CompletableFuture<>());
                upstreamViews.put(i, new CompletableFuture<>());
                clients.add(connect(group, clientChannels, proxy.port(), i, endings.get(i)));
            }

            Map<String, Integer> tally = new TreeMap<>();
            for (Client c : clients) {
                TlsCloseEvent event = c.handler.closeFuture().get(remaining(deadline), TimeUnit.NANOSECONDS);
                switch (c.ending) {
                    case UPSTREAM_ENDS:
                        assertThat(event.status()).as("#%d %s: %s", c.id, c.ending, event)
                                .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
                        assertThat(event.initiator()).isEqualTo(TlsCloseInitiator.PEER);
                        assertThat(c.app.received).as("#%d bytes", c.id).isEqualTo(RESPONSE);
                        assertThat(c.app.wrong).as("#%d bytes not as sent", c.id).isZero();
                        break;
                    case CLIENT_ENDS:
                        assertThat(event.status()).as("#%d %s: %s", c.id, c.ending, event)
                                .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
                        assertThat(event.initiator()).isEqualTo(TlsCloseInitiator.LOCAL);
                        assertThat(c.app.received).as("#%d bytes", c.id).isEqualTo(RESPONSE);
                        assertThat(c.app.wrong).as("#%d bytes not as sent", c.id).isZero();
                        break;
                    case UPSTREAM_RESETS:
                        assertThat(event.status()).as("#%d %s: the client's view of the upstream's reset: %s",
                                c.id, c.ending, event).isEqualTo(TlsCloseStatus.TRUNCATED);
                        // What the upstream's kernel had sent before its reset: a prefix, never other bytes.
                        assertThat(c.app.received).as("#%d bytes", c.id).isLessThanOrEqualTo(RESPONSE / 2);
                        assertThat(c.app.wrong).as("#%d bytes not as sent", c.id).isZero();
                        break;
                    default:
                        break; // its own truncation
                }
                String upstreamView = c.ending == Ending.UPSTREAM_RESETS ? "-"
                        : upstreamViews.get(c.id).get(remaining(deadline), TimeUnit.NANOSECONDS);
                String expected = c.ending == Ending.CLIENT_TRUNCATES ? "RESET"
                        : c.ending == Ending.UPSTREAM_RESETS ? "-" : "FIN";
                assertThat(upstreamView).as("#%d %s: what the upstream saw", c.id, c.ending).isEqualTo(expected);
                tally.merge(c.ending + ": client " + event.status() + ", upstream " + upstreamView, 1, Integer::sum);
            }
            Map<String, Integer> relays = new TreeMap<>();
            for (int i = 0; i < CONNECTIONS; i++) {
                TlsCloseRelay.Outcome o = outcomes.poll(remaining(deadline), TimeUnit.NANOSECONDS);
                assertThat(o).as("relay outcome %d of %d", i + 1, CONNECTIONS).isNotNull();
                relays.merge(o.frontendEnd() + "/" + o.backendEnd(), 1, Integer::sum);
            }
            System.out.println("backend on " + backendLoop + ": clients: " + tally + "\nrelays (frontend/backend): "
                    + relays);
            assertThat(relays).containsExactlyInAnyOrderEntriesOf(Map.of(
                    "CLEAN/CLEAN", CONNECTIONS / 2,
                    "TRUNCATED/ABORTED", CONNECTIONS / 4,
                    "ABORTED/TRUNCATED", CONNECTIONS / 4));

            for (Client c : clients) {
                c.channel.closeFuture().await(remaining(deadline), TimeUnit.NANOSECONDS);
            }
            ProxyEndToEndTest.awaitNoOpenChannels(proxy);
            assertThat(clientChannels.size()).as("client channels left open").isZero();
            for (Channel ch : upstreamChannels) {
                ch.closeFuture().await(remaining(deadline), TimeUnit.NANOSECONDS);
            }
            assertThat(upstreamChannels.size()).as("upstream channels left open").isZero();
        } finally {
            proxyLog.setLevel(level);
            if (proxy != null) {
                proxy.close();
            }
            if (upstream != null) {
                upstream.close().await(5, TimeUnit.SECONDS);
            }
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
            for (Path p : List.of(pem.certificate(), pem.privateKey(), pem.caCertificate(), pem.certificateChain(),
                    pki)) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** The response to connection {@code id}: each byte depends on the connection and its position. */
    static byte responseByte(int id, int position) {
        return (byte) ((position * 31 + id * 7) % 251);
    }

    static byte[] response(int id, int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = responseByte(id, i);
        }
        return b;
    }

    private static long remaining(long deadline) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
            throw new AssertionError("not done within " + DEADLINE_SECONDS + " s");
        }
        return left;
    }

    private record Client(int id, Ending ending, Channel channel, GracefulTlsCloseHandler handler, ClientApp app) {
    }

    private Client connect(EventLoopGroup group, ChannelGroup channels, int port, int id, Ending ending) {
        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(READ_TIMEOUT)
                .build();
        ClientApp app = new ClientApp(id, ending);
        ChannelFuture connect = new Bootstrap()
                .group(group)
                .channel(NioSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        channels.add(ch);
                        ch.pipeline().addLast(Tls.clientContext(SslProvider.OPENSSL, Tls.TLS_1_3)
                                .newHandler(ch.alloc()));
                        ch.pipeline().addLast(handler);
                        ch.pipeline().addLast(app);
                    }
                })
                .connect(InetAddress.getLoopbackAddress(), port);
        return new Client(id, ending, connect.channel(), handler, app);
    }

    /** The client's application: sends "ENDING id\n", reads, and ends as its {@link Ending} says. */
    private final class ClientApp extends ChannelInboundHandlerAdapter {
        final int id;
        final Ending ending;
        volatile int received;
        /** Bytes that differ from {@link #responseByte}: the response is checked as it comes. */
        volatile int wrong;

        ClientApp(int id, Ending ending) {
            this.id = id;
            this.ending = ending;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            // Written at once: the SslHandler holds it until the handshake is done.
            ctx.writeAndFlush(Unpooled.copiedBuffer(ending + " " + id + "\n", StandardCharsets.US_ASCII));
            if (ending == Ending.CLIENT_TRUNCATES) {
                // Once the upstream has the request: FIN without close_notify, below the SslHandler.
                requestsSeen.get(id).thenRun(() -> ctx.channel().eventLoop().execute(
                        () -> ctx.pipeline().firstContext().close()));
            }
            ctx.fireChannelActive();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf buf = (ByteBuf) msg;
            int at = received;
            int bad = 0;
            for (int i = buf.readerIndex(); i < buf.writerIndex(); i++) {
                if (buf.getByte(i) != responseByte(id, at++)) {
                    bad++;
                }
            }
            wrong += bad;
            received += buf.readableBytes();
            buf.release();
            if (ending == Ending.CLIENT_ENDS && received == RESPONSE) {
                ctx.channel().close(); // close_notify, then waits for the proxy's
            }
        }
    }

    /** The upstream: reads "ENDING id\n", answers as the ending says, and records how its input ended. */
    private final class Upstream extends ChannelInboundHandlerAdapter {
        private final StringBuilder line = new StringBuilder();
        private int id = -1;
        private Ending ending;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf buf = (ByteBuf) msg;
            try {
                while (id < 0 && buf.isReadable()) {
                    char c = (char) buf.readByte();
                    if (c != '\n') {
                        line.append(c);
                        continue;
                    }
                    String[] parts = line.toString().split(" ");
                    ending = Ending.valueOf(parts[0]);
                    id = Integer.parseInt(parts[1]);
                    requestsSeen.get(id).complete(null);
                    respond(ctx);
                }
            } finally {
                buf.release();
            }
        }

        private void respond(ChannelHandlerContext ctx) {
            Channel ch = ctx.channel();
            switch (ending) {
                case UPSTREAM_ENDS:
                    ch.writeAndFlush(Unpooled.wrappedBuffer(response(id, RESPONSE)))
                            .addListener(f -> ((DuplexChannel) ch).shutdownOutput());
                    break;
                case UPSTREAM_RESETS:
                    ch.writeAndFlush(Unpooled.wrappedBuffer(response(id, RESPONSE / 2))).addListener(f -> {
                        ch.config().setOption(ChannelOption.SO_LINGER, 0);
                        ch.close();
                    });
                    break;
                case CLIENT_ENDS:
                    ch.writeAndFlush(Unpooled.wrappedBuffer(response(id, RESPONSE)));
                    break;
                default:
                    break; // CLIENT_TRUNCATES: wait
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof IOException) {
                ended(ctx, "RESET"); // with half-closure on, a ChannelInputShutdownEvent follows
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                ended(ctx, "FIN");
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            ended(ctx, "CLOSED");
            ctx.fireChannelInactive();
        }

        private void ended(ChannelHandlerContext ctx, String how) {
            if (id >= 0) {
                upstreamViews.get(id).complete(how); // the first one counts
            }
            Channel ch = ctx.channel();
            if (ending == Ending.CLIENT_ENDS && "FIN".equals(how)) {
                // The client is done: so are we.
                ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> ch.close());
            } else if (!"CLOSED".equals(how)) {
                ch.close();
            }
        }
    }
}
