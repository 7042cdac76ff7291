package io.github.gracefultls;

import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.Transport;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * SPEC "Invariants": methods may be called from any thread, and work hops onto the channel's event loop; over real
 * loopback sockets, on every {@link Transport}.
 */
class CrossThreadCallsTest extends SocketTestBase {

    private static final String COMBOS = "io.github.gracefultls.testing.Tls#providersAndProtocols";
    /** Our read timeout: the peer answers, and beats it however loaded the machine. */
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(30);
    /** Bound for every wait here, longer than {@link #READ_TIMEOUT}: a closure that missed it shows its event. */
    private static final long AWAIT_SECONDS = 45;

    @Override
    int eventLoopThreads() {
        return 2;
    }

    @Override
    Duration await() {
        return Duration.ofSeconds(AWAIT_SECONDS);
    }

    @Override
    Duration shutdownTimeout() {
        return Duration.ofSeconds(5);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeAndByeFromEightThreadsAtOnce(SslProvider provider, String protocol) throws Exception {
        TlsSockets.Client client = connect(provider, protocol);
        Channel channel = client.channel;
        GracefulTlsCloseHandler handler = client.handler;
        int threads = 8;
        CountDownLatch go = new CountDownLatch(1);
        List<ChannelFuture> closes = new CopyOnWriteArrayList<>();
        List<Future<TlsCloseEvent>> byes = new CopyOnWriteArrayList<>();
        List<Thread> started = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                closes.add(channel.close());
                byes.add(handler.bye(TlsCloseMode.SHUT_RDWR));
            }, "closer-" + i);
            t.start();
            started.add(t);
        }
        go.countDown();
        for (Thread t : started) {
            t.join(TimeUnit.SECONDS.toMillis(AWAIT_SECONDS));
            assertThat(t.isAlive()).as(t.getName() + " finished").isFalse();
        }

        assertThat(closes).hasSize(threads);
        assertThat(byes).hasSize(threads);
        for (ChannelFuture f : closes) {
            assertThat(f.await(AWAIT_SECONDS, TimeUnit.SECONDS)).as("close() promise completes").isTrue();
            assertThat(f.isSuccess()).as("close() promise succeeds: %s", f.cause()).isTrue();
        }
        Future<TlsCloseEvent> closeFuture = handler.closeFuture();
        assertThat(closeFuture.await(AWAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        TlsCloseEvent event = closeFuture.getNow();
        assertThat(event).isNotNull();
        for (Future<TlsCloseEvent> f : byes) {
            assertThat(f.await(AWAIT_SECONDS, TimeUnit.SECONDS)).as("bye() future completes").isTrue();
            assertThat(f.isSuccess()).as("bye() succeeds: %s", f.cause()).isTrue();
            assertThat(f.getNow()).isSameAs(event);
        }
        assertThat(channel.closeFuture().await(AWAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        assertThat(channel.isOpen()).isFalse();
        client.rec.awaitInactive(Duration.ofSeconds(AWAIT_SECONDS));
        assertThat(client.rec.eventsOfType(TlsCloseEvent.class)).containsExactly(event);
        assertThat(event.initiator()).isEqualTo(TlsCloseInitiator.LOCAL);
        assertThat(event.status()).as("%s, cause %s", event, event.cause())
                .isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void byeFromAnotherThreadWorks(SslProvider provider, String protocol) throws Exception {
        TlsSockets.Client client = connect(provider, protocol);
        assertThat(client.channel.eventLoop().inEventLoop()).isFalse();

        Future<TlsCloseEvent> bye = client.handler.bye(TlsCloseMode.SHUT_RDWR);

        assertThat(bye.await(AWAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        assertThat(bye.isSuccess()).as("bye() succeeds: %s", bye.cause()).isTrue();
        TlsCloseEvent event = bye.getNow();
        assertThat(event.status()).isEqualTo(TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        assertThat(event.initiator()).isEqualTo(TlsCloseInitiator.LOCAL);
        assertThat(event.mode()).isEqualTo(TlsCloseMode.SHUT_RDWR);
        assertThat(client.handler.closeFuture().getNow()).isSameAs(event);
        assertThat(client.rec.awaitEvent(TlsCloseEvent.class, Duration.ofSeconds(AWAIT_SECONDS)))
                .isSameAs(event);
    }

    /** A closeFuture() asked for before the handler is in a pipeline notifies its listeners on the event loop. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource(COMBOS)
    void closeFutureAskedForBeforeTheHandlerIsAddedNotifiesOnTheEventLoop(SslProvider provider, String protocol)
            throws Exception {
        GracefulTlsCloseHandler handler = new GracefulTlsCloseHandler();
        Future<TlsCloseEvent> early = handler.closeFuture();
        AtomicReference<Channel> channel = new AtomicReference<>();
        CompletableFuture<Boolean> onEventLoop = new CompletableFuture<>();
        early.addListener(f -> onEventLoop.complete(channel.get().eventLoop().inEventLoop()));
        TlsSockets.Peer peer = sockets.listen(Tls.serverContext(provider, protocol), new GracefulTlsCloseHandler(),
                new RecordingHandler(), null);
        TlsSockets.Client client = sockets.connect(Tls.clientContext(provider, protocol), peer.address(), handler,
                new RecordingHandler());
        channel.set(client.channel);
        peer.awaitHandshake();

        client.channel.close();

        assertThat(onEventLoop.get(AWAIT_SECONDS, TimeUnit.SECONDS)).as("listener on the channel's event loop")
                .isTrue();
        assertThat(early.getNow()).isSameAs(handler.closeFuture().getNow())
                .isSameAs(client.rec.awaitEvent(TlsCloseEvent.class, Duration.ofSeconds(AWAIT_SECONDS)));
    }

    /**
     * Our client and a Netty server, both with our handler, over loopback sockets on real event loops, handshake done
     * on both sides; {@code sockets} closes them. Not {@code LocalChannel}: on Netty 4.2.18 it can drop what the peer
     * wrote just before it closed (its finish-read task reschedules itself behind the peer's close task when it was
     * submitted during a write of ours), which here lost the server's {@code close_notify} about once in a few
     * thousand closures under load.
     */
    private TlsSockets.Client connect(SslProvider provider, String protocol) throws Exception {
        TlsSockets.Peer peer = sockets.listen(Tls.serverContext(provider, protocol), new GracefulTlsCloseHandler(),
                new RecordingHandler(), null);
        TlsSockets.Client client = sockets.connect(Tls.clientContext(provider, protocol), peer.address(),
                GracefulTlsCloseHandler.builder().closeNotifyReadTimeout(READ_TIMEOUT).build(), new RecordingHandler());
        peer.awaitHandshake();
        return client;
    }
}
