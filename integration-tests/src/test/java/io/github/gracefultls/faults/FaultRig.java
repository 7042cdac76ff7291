package io.github.gracefultls.faults;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.testing.RecordingHandler;
import io.github.gracefultls.testing.Tls;
import io.github.gracefultls.testing.TlsSockets;
import io.github.gracefultls.testing.TlsSockets.Client;
import io.github.gracefultls.testing.TlsSockets.Peer;
import io.github.gracefultls.testing.Transport;
import io.github.gracefultls.testing.Wire;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.Future;

import java.net.SocketAddress;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.Consumer;

import static java.util.concurrent.TimeUnit.SECONDS;

/**
 * Real loopback TLS connections for the fault tests, on a {@link Transport} of their own ({@link TlsSockets}): "our" client
 * channel ({@code SslHandler}, {@link GracefulTlsCloseHandler}, {@link RecordingHandler}) and a Netty peer whose
 * first handler, a {@link Wire}, sits below the peer's {@code SslHandler} and can go deaf, cork, inject raw bytes,
 * send a FIN or a reset.
 */
final class FaultRig implements AutoCloseable {

    /** Bound on every wait for what should come at once: far from any stall of a loaded machine. */
    static final long AWAIT_SECONDS = 30;
    static final Duration AWAIT = Duration.ofSeconds(AWAIT_SECONDS);

    /** How our side ends the TLS session, or {@code PEER} when the peer begins. */
    enum Op {
        CLOSE, BYE_RDWR, SHUTDOWN_OUTPUT, PEER;

        static final Op[] LOCAL = {CLOSE, BYE_RDWR, SHUTDOWN_OUTPUT};

        /** Starts this closure on {@code client} from this thread; returns the future of the TLS closure. */
        Future<TlsCloseEvent> start(Client client) {
            switch (this) {
                case CLOSE:
                    client.channel.close();
                    return client.handler.closeFuture();
                case BYE_RDWR:
                    return client.handler.bye(TlsCloseMode.SHUT_RDWR);
                case SHUTDOWN_OUTPUT:
                    return client.handler.shutdownOutput();
                default:
                    return client.handler.closeFuture();
            }
        }
    }

    final Transport transport;
    final EventLoopGroup group;
    private final TlsSockets sockets;

    FaultRig(Transport transport, int threads) {
        this.transport = transport;
        this.group = transport.newGroup(threads);
        this.sockets = new TlsSockets(group, transport.channelClass(), transport.serverChannelClass(), AWAIT);
    }

    @Override
    public void close() throws Exception {
        try {
            sockets.close();
        } finally {
            group.shutdownGracefully(0, 2, SECONDS).await(AWAIT_SECONDS, SECONDS);
        }
    }

    /** Our client ({@code ssl}, {@code tls-close}, {@code rec}), connected and past its handshake. */
    Client connect(SslProvider provider, String protocol, SocketAddress address, GracefulTlsCloseHandler handler,
                   Consumer<Bootstrap> options) throws Exception {
        return sockets.connect(Tls.clientContext(provider, protocol), address, handler,
                RecordingHandler.swallowingExceptions(), options);
    }

    /** A peer accepting one connection: {@link Wire}, {@code SslHandler}, optionally {@code tlsClose}, recorder. */
    Peer startPeer(SslProvider provider, String protocol, GracefulTlsCloseHandler tlsClose,
                   Consumer<ServerBootstrap> options) throws Exception {
        return sockets.listen(Tls.serverContext(provider, protocol), tlsClose, RecordingHandler.swallowingExceptions(),
                options);
    }

    // ---- helpers

    static <T> T onEventLoop(Channel ch, Callable<T> task) throws Exception {
        return TlsSockets.onEventLoop(ch, task, AWAIT);
    }

    static void runOnEventLoop(Channel ch, Runnable task) throws Exception {
        ch.eventLoop().submit(task).get(AWAIT_SECONDS, SECONDS);
    }
}
