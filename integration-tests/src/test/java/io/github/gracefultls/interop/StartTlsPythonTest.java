package io.github.gracefultls.interop;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.PeerClosePolicy;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Peers;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Named.named;

/**
 * StartTLS against Python's {@code ssl} ({@code src/test/peers/tls_peer.py}, scenarios {@code starttls-*}): a
 * plaintext "STARTTLS" line, "OK", TLS with the handler right after the {@code SslHandler} added mid-stream, a line
 * each way over TLS, the TLS closure back to plaintext ({@code bye(SHUT_RDWR)} answered by {@code SSLSocket.unwrap()},
 * or {@code unwrap()} answered under {@link PeerClosePolicy#REUSE_TRANSPORT}), then a plaintext line each way on the
 * same TCP connection. Both ways: we begin StartTLS (our client, the Python server), the peer begins it (the Python
 * client, our server); and for each, we begin the TLS closure, or the peer does.
 */
class StartTlsPythonTest extends InteropTest {

    private static final AtomicInteger IDS = new AtomicInteger();

    /** Who ends the TLS session: its Python scenario and what our handler's event says. */
    enum Closure {
        WE_END("starttls-answer-unwrap", TlsCloseInitiator.LOCAL, TlsCloseMode.SHUT_RDWR),
        PEER_ENDS("starttls-initiate-unwrap", TlsCloseInitiator.PEER, null);

        final String scenario;
        final TlsCloseInitiator initiator;
        final TlsCloseMode mode;

        Closure(String scenario, TlsCloseInitiator initiator, TlsCloseMode mode) {
            this.scenario = scenario;
            this.initiator = initiator;
            this.mode = mode;
        }
    }

    static Stream<Arguments> closuresAndCells() {
        return Stream.of(Closure.values()).flatMap(c -> Cell.nio().map(cell -> Arguments.of(named(c.name(), c),
                cell)));
    }

    private static String script() {
        return PEERS_DIRECTORY.resolve("tls_peer.py").toString();
    }

    /** Our side of one connection: what arrived (plaintext, TLS, plaintext: all one text) and the handler. */
    private static class Side extends ChannelInboundHandlerAdapter {
        private final StringBuilder received = new StringBuilder();
        final GracefulTlsCloseHandler handler;
        final CompletableFuture<Channel> channel = new CompletableFuture<>();

        Side(Closure closure) {
            handler = GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(LONG_TIMEOUT)
                    .peerClosePolicy(closure == Closure.PEER_ENDS ? PeerClosePolicy.REUSE_TRANSPORT
                            : PeerClosePolicy.CLOSE).build();
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            channel.complete(ctx.channel());
            ctx.fireChannelActive();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf) {
                String text = ((ByteBuf) msg).toString(StandardCharsets.US_ASCII);
                synchronized (this) {
                    received.append(text);
                    notifyAll();
                }
                onText(ctx, text);
            }
            ReferenceCountUtil.release(msg);
        }

        void onText(ChannelHandlerContext ctx, String text) {
        }

        synchronized void awaitReceived(String text) throws InterruptedException, TimeoutException {
            long deadline = System.nanoTime() + AWAIT.toNanos();
            while (received.indexOf(text) < 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new TimeoutException("no \"" + text.trim() + "\" within " + AWAIT + "; got: " + received);
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
        }

        synchronized String received() {
            return received.toString();
        }

        /** Adds the SslHandler and the handler after it, before this one: StartTLS. */
        void startTls(ChannelPipeline p, SslHandler ssl) {
            p.addFirst("ssl", ssl);
            p.addAfter("ssl", "tls-close", handler);
        }
    }

    private static void write(Channel ch, String line) throws Exception {
        ch.writeAndFlush(Unpooled.copiedBuffer(line, StandardCharsets.US_ASCII))
                .get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** The TLS closure and the plaintext after it, on our side; the peer's report checked. */
    private void closeAndExchangePlaintext(Closure closure, Side side, PeerProcess peer, String id, String tlsLine)
            throws Exception {
        Channel ch = side.channel.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        side.awaitReceived(tlsLine);
        TlsCloseEvent event = closure == Closure.WE_END
                ? side.handler.bye(TlsCloseMode.SHUT_RDWR).get(AWAIT.toMillis(), TimeUnit.MILLISECONDS)
                : side.handler.closeFuture().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);

        InteropReport.observe(describe(event) + "; pipeline after: " + ch.pipeline().names());
        assertEvent(event, TlsCloseStatus.CLOSE_NOTIFY_RECEIVED, closure.initiator, closure.mode);
        assertThat(ch.pipeline().get("ssl")).as("the SslHandler left").isNull();
        assertThat(ch.pipeline().get("tls-close")).as("the handler left").isNull();
        write(ch, "PLAIN-FROM-NETTY " + id + "\n");
        side.awaitReceived("PLAIN-FROM-PEER " + id + "\n");
        ch.close().get(AWAIT.toMillis(), TimeUnit.MILLISECONDS); // the peer reads until our FIN
        peer.awaitStdout(id + " done=1", AWAIT);
        assertThat(peer.stdout()).contains(id + " unwrapped=1", id + " plain-from-peer=PLAIN-FROM-NETTY " + id,
                id + " after-plaintext=0");
    }

    // ------------------------------------------------------------------------------------------------------------
    // We begin StartTLS: our client, the Python server
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("closuresAndCells")
    void weBeginStartTls(Closure closure, Cell cell) throws Exception {
        PeerProcess server = shared("python-" + closure.scenario, () -> {
            String python = Peers.requirePython().toString();
            return PeerProcess.startListening("python-server-" + closure.scenario, port -> List.of(python,
                    script(), "server", "--scenario", closure.scenario, "--port", String.valueOf(port),
                    "--cert", pem.certificate().toString(), "--key", pem.privateKey().toString()),
                    workDirectory, LISTEN);
        });
        String id = "s" + IDS.incrementAndGet();
        SslContext context = cell.clientContext();
        Side side = new Side(closure) {
            private boolean started;

            @Override
            void onText(ChannelHandlerContext ctx, String text) {
                if (!started && text.contains("OK\n")) {
                    started = true;
                    startTls(ctx.pipeline(), context.newHandler(ctx.alloc()));
                    ctx.writeAndFlush(Unpooled.copiedBuffer("HELLO " + id + "\n", StandardCharsets.US_ASCII));
                }
            }
        };
        Channel ch = new Bootstrap().group(loops.group(cell.transport())).channel(cell.transport().channelClass())
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true).handler(side)
                .connect(InetAddress.getLoopbackAddress(), server.port()).sync().channel();
        perTest(() -> ch.close().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS));
        write(ch, "STARTTLS " + id + "\n");

        closeAndExchangePlaintext(closure, side, server, id, "TLS-FROM-PEER " + id + "\n");
        assertThat(server.stdout()).contains(id + " protocol=" + cell.protocol(), id + " tls-from-netty=HELLO " + id);
    }

    // ------------------------------------------------------------------------------------------------------------
    // The peer begins StartTLS: the Python client, our server
    // ------------------------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}, {1}")
    @MethodSource("closuresAndCells")
    void peerBeginsStartTls(Closure closure, Cell cell) throws Exception {
        String id = "c" + IDS.incrementAndGet();
        SslContext context = cell.serverContext();
        BlockingQueue<Side> accepted = new LinkedBlockingQueue<>();
        Channel serverChannel = new ServerBootstrap().group(loops.group(cell.transport()))
                .channel(cell.transport().serverChannelClass())
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        Side side = new Side(closure) {
                            private boolean started;

                            @Override
                            void onText(ChannelHandlerContext ctx, String text) {
                                if (!started && text.startsWith("STARTTLS ")) {
                                    started = true;
                                    // startTls: the "OK" that follows goes out in plaintext, then TLS.
                                    startTls(ctx.pipeline(), new SslHandler(context.newEngine(ctx.alloc()), true));
                                    ctx.writeAndFlush(Unpooled.copiedBuffer("OK\n", StandardCharsets.US_ASCII));
                                } else if (text.contains("HELLO ")) {
                                    ctx.writeAndFlush(Unpooled.copiedBuffer("TLS-FROM-NETTY " + id + "\n",
                                            StandardCharsets.US_ASCII));
                                }
                            }
                        };
                        ch.pipeline().addLast(side);
                        accepted.add(side);
                    }
                }).bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)).sync().channel();
        perTest(() -> serverChannel.close().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS));
        int port = ((InetSocketAddress) serverChannel.localAddress()).getPort();
        PeerProcess client = perTest(PeerProcess.start("python-client-" + closure.scenario, List.of(
                Peers.requirePython().toString(), script(), "client", "--scenario", closure.scenario,
                "--port", String.valueOf(port), "--ca", pem.caCertificate().toString(),
                "--protocol", cell.protocol(), "--id", id), workDirectory));
        Side side = accepted.poll(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(side).as("a connection accepted").isNotNull();
        Channel ours = side.channel.get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
        perTest(() -> ours.close().await(AWAIT.toMillis(), TimeUnit.MILLISECONDS));

        side.awaitReceived("HELLO " + id + "\n");
        closeAndExchangePlaintext(closure, side, client, id, "HELLO " + id + "\n");
        assertThat(client.awaitExit(AWAIT)).isZero();
        assertThat(client.stdout()).contains(id + " protocol=" + cell.protocol(),
                id + " tls-from-netty=TLS-FROM-NETTY " + id);
        assertThat(side.received()).startsWith("STARTTLS " + id + "\nHELLO " + id + "\n");
    }
}
