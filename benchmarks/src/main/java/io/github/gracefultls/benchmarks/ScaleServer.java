package io.github.gracefultls.benchmarks;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import java.util.concurrent.Callable;
import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.ssl.SslProvider;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The server side of {@link ClosureAtScale} and {@link ConnectionCost}, in a JVM of its own so that each process
 * holds one end of each connection (10,000 connections are 20,000 file descriptors, and the limit here is 20,000 per
 * process). One event loop serves every connection. Two ports: {@code graceful} ({@code SslHandler} and
 * {@link GracefulTlsCloseHandler}, whose default {@code PeerClosePolicy.CLOSE} answers the client's
 * {@code close_notify} and closes) and {@code netty} ({@code SslHandler} alone; it closes when the client's FIN
 * arrives).
 *
 * <p>It talks over its standard streams, one line per command and per answer:
 * <pre>
 * &gt; READY graceful-port netty-port
 * &lt; EXPECT variant n     resets the variant's counters; the answers follow
 * &gt; OK variant
 * &gt; HANDSHAKEN variant   once n handshakes succeeded
 * &gt; DONE variant nanoTime closed events clean   once n connections closed (and, graceful, n events fired)
 * &lt; LEAKS
 * &gt; LEAKS n
 * &lt; QUIT (or end of input)
 * </pre>
 * Times are {@link System#nanoTime()}, which on Linux is the same monotonic clock in every process.
 */
@Command(name = "ScaleServer", mixinStandardHelpOptions = true,
        description = "The server side of ClosureAtScale, driven over its standard streams.")
public final class ScaleServer implements Callable<Integer> {

    private static final PrintStream OUT = System.out;

    @Parameters(index = "0", paramLabel = "JDK|OPENSSL", converter = Cli.ProviderConverter.class,
            description = "TLS provider.")
    private SslProvider provider;

    @Parameters(index = "1", paramLabel = "TLSv1.2|TLSv1.3", converter = Cli.ProtocolConverter.class,
            description = "TLS protocol.")
    private String protocol;

    private ScaleServer() {
    }

    public static void main(String[] args) {
        Cli.run(new ScaleServer(), args);
    }

    @Override
    public Integer call() throws IOException {
        LeakCounter.install();
        System.setOut(System.err); // only the protocol goes to standard output
        EventLoopGroup boss = Net.group("scale-server-boss");
        EventLoopGroup loop = Net.group("scale-server");
        EventLoop executor = loop.next();
        Counters graceful = new Counters("graceful", true);
        Counters netty = new Counters("netty", false);
        Channel gracefulServer = Net.server(boss, loop, ch -> {
            ch.pipeline().addLast("ssl", sslHandler(ch, provider, protocol));
            ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
            ch.pipeline().addLast("count", graceful);
            graceful.track(ch);
        });
        Channel nettyServer = Net.server(boss, loop, ch -> {
            ch.config().setAllowHalfClosure(false);
            ch.pipeline().addLast("ssl", sslHandler(ch, provider, protocol));
            ch.pipeline().addLast("count", netty);
            netty.track(ch);
        });
        answer("READY " + Net.port(gracefulServer) + " " + Net.port(nettyServer));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try {
            for (String line; (line = in.readLine()) != null; ) {
                String[] f = line.trim().split("\\s+");
                if (f[0].equals("EXPECT")) {
                    Counters c = f[1].equals("graceful") ? graceful : netty;
                    int n = Integer.parseInt(f[2]);
                    executor.submit(() -> c.reset(n)).syncUninterruptibly();
                    answer("OK " + c.name);
                } else if (f[0].equals("LEAKS")) {
                    answer("LEAKS " + LeakCounter.collect());
                } else if (f[0].equals("QUIT")) {
                    break;
                }
            }
        } finally {
            gracefulServer.close().syncUninterruptibly();
            nettyServer.close().syncUninterruptibly();
            Net.shutdown(loop, boss);
        }
        return 0;
    }

    private static SslHandler sslHandler(Channel ch, SslProvider provider, String protocol) {
        SslHandler ssl = TlsContexts.server(provider, protocol).newHandler(ch.alloc());
        ssl.setHandshakeTimeout(ClosureAtScale.HANDSHAKE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        return ssl;
    }

    private static synchronized void answer(String line) {
        OUT.println(line);
        OUT.flush();
    }

    /** Counts, on the server's one event loop, the handshakes, closures and events of one port. */
    @ChannelHandler.Sharable
    private static final class Counters extends ChannelInboundHandlerAdapter {
        final String name;
        private final boolean events;
        private int target = Integer.MAX_VALUE;
        private int handshakes;
        private int closed;
        private int fired;
        private int clean;
        private boolean handshakesReported;
        private boolean doneReported;

        Counters(String name, boolean events) {
            this.name = name;
            this.events = events;
        }

        void reset(int n) {
            target = n;
            handshakes = 0;
            closed = 0;
            fired = 0;
            clean = 0;
            handshakesReported = false;
            doneReported = false;
        }

        void track(Channel ch) {
            ch.closeFuture().addListener(f -> {
                closed++;
                check();
            });
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof SslHandshakeCompletionEvent && ((SslHandshakeCompletionEvent) evt).isSuccess()) {
                handshakes++;
                if (!handshakesReported && handshakes >= target) {
                    handshakesReported = true;
                    answer("HANDSHAKEN " + name);
                }
            } else if (evt instanceof TlsCloseEvent) {
                fired++;
                if (((TlsCloseEvent) evt).isClean()) {
                    clean++;
                }
                check();
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // Netty alone: the client may be gone before our close_notify goes out (a reset). Expected.
        }

        private void check() {
            if (!doneReported && closed >= target && (!events || fired >= target)) {
                doneReported = true;
                answer(String.format(Locale.ROOT, "DONE %s %d %d %d %d", name, System.nanoTime(), closed, fired,
                        clean));
            }
        }
    }
}
