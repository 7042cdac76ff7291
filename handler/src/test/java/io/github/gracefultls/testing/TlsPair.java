package io.github.gracefultls.testing;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A TLS client and server on two {@link EmbeddedChannel}s, connected by explicitly moving bytes between them.
 * Each pipeline starts with a real {@link SslHandler} ({@code SslContext.newHandler(channel.alloc())}, added
 * after registration); further handlers are added after it by a per-side initializer (by default a single
 * {@link RecordingHandler}).
 * <p>
 * Bytes only move when a test says so: {@link #pump()} (everything, until quiet), {@link #forward(Side)} (one
 * side's pending bytes as one buffer), {@link #forward(Side, int)} (split in two buffers),
 * {@link #drainOutbound(Side)} + {@link #deliver(Side, byte[])} (inspect or tamper in between). Every moved or
 * drained {@code ByteBuf} is released. Bytes delivered to a closed channel are dropped (and released).
 * <p>
 * Time: the channels use {@code EmbeddedChannel}'s controllable clock ({@link #freezeTime()},
 * {@link #advanceTimeBy(long, TimeUnit)}, or the channels' own methods). Exceptions that reach the end of a
 * pipeline are rethrown by {@code EmbeddedChannel} from the call that caused them (e.g. {@link #pump()}).
 * <p>
 * {@link #close()} calls {@code finishAndReleaseAll()} on both channels; use try-with-resources.
 * <p>
 * Engine quirks worth knowing when counting records: a BoringSSL (OPENSSL) TLS 1.3 server defers its
 * NewSessionTicket record(s) to its first write after the handshake (so they precede e.g. its close_notify);
 * the JDK sends them during the handshake, so {@link #handshake()} already delivered them.
 */
public final class TlsPair implements AutoCloseable {

    /** A side of the pair. */
    public enum Side {
        CLIENT, SERVER;

        public Side peer() {
            return this == CLIENT ? SERVER : CLIENT;
        }
    }

    /** Upper bound of {@link #pump()} rounds; more means the peers keep talking forever. */
    private static final int MAX_PUMP_ROUNDS = 1000;
    /** Upper bound of handshake rounds (a full handshake needs 2 or 3). */
    private static final int MAX_HANDSHAKE_ROUNDS = 20;

    private final EmbeddedChannel client;
    private final EmbeddedChannel server;
    private final SslHandler clientSsl;
    private final SslHandler serverSsl;
    /** The last RecordingHandler of each pipeline right after construction (pipelines are emptied on close). */
    private final RecordingHandler clientRecorder;
    private final RecordingHandler serverRecorder;

    private TlsPair(Builder builder) {
        EmbeddedChannel clientChannel = null;
        EmbeddedChannel serverChannel = null;
        try {
            // Server first, so the ClientHello written by the client's handlerAdded cannot get ahead of it.
            serverChannel = builder.halfClosure ? new HalfClosableEmbeddedChannel() : new EmbeddedChannel();
            SslHandler serverHandler = builder.serverContext.newHandler(serverChannel.alloc());
            serverChannel.pipeline().addLast("ssl", serverHandler);
            builder.serverInitializer.accept(serverChannel.pipeline());

            clientChannel = builder.halfClosure ? new HalfClosableEmbeddedChannel() : new EmbeddedChannel();
            SslHandler clientHandler = builder.clientContext.newHandler(clientChannel.alloc());
            clientChannel.pipeline().addLast("ssl", clientHandler);
            builder.clientInitializer.accept(clientChannel.pipeline());

            this.server = serverChannel;
            this.client = clientChannel;
            this.serverSsl = serverHandler;
            this.clientSsl = clientHandler;
            this.serverRecorder = findRecorder(serverChannel.pipeline());
            this.clientRecorder = findRecorder(clientChannel.pipeline());
        } catch (RuntimeException | Error e) {
            if (serverChannel != null) {
                serverChannel.finishAndReleaseAll();
            }
            if (clientChannel != null) {
                clientChannel.finishAndReleaseAll();
            }
            throw e;
        }
    }

    /** A pair using {@link Tls}' cached contexts, with a {@link RecordingHandler} after each SslHandler. */
    public static TlsPair create(SslProvider provider, String protocol) {
        return builder(provider, protocol).build();
    }

    /** A pair using {@link Tls}' cached contexts, with the given handlers after each SslHandler. */
    public static TlsPair create(SslProvider provider, String protocol,
                                 Consumer<ChannelPipeline> clientInitializer,
                                 Consumer<ChannelPipeline> serverInitializer) {
        return builder(provider, protocol).client(clientInitializer).server(serverInitializer).build();
    }

    /** A builder using {@link Tls#clientContext} and {@link Tls#serverContext}. */
    public static Builder builder(SslProvider provider, String protocol) {
        return new Builder(Tls.clientContext(provider, protocol), Tls.serverContext(provider, protocol));
    }

    /** A builder using the given contexts (must be a client and a server context). */
    public static Builder builder(SslContext clientContext, SslContext serverContext) {
        return new Builder(clientContext, serverContext);
    }

    /** Configures a {@link TlsPair}. */
    public static final class Builder {
        private final SslContext clientContext;
        private final SslContext serverContext;
        private Consumer<ChannelPipeline> clientInitializer = p -> p.addLast(new RecordingHandler());
        private Consumer<ChannelPipeline> serverInitializer = p -> p.addLast(new RecordingHandler());
        private boolean halfClosure;

        private Builder(SslContext clientContext, SslContext serverContext) {
            this.clientContext = Objects.requireNonNull(clientContext, "clientContext");
            this.serverContext = Objects.requireNonNull(serverContext, "serverContext");
            if (!clientContext.isClient() || serverContext.isClient()) {
                throw new IllegalArgumentException("need a client and a server SslContext");
            }
        }

        /** Adds handlers after the client's SslHandler (replaces the default RecordingHandler). */
        public Builder client(Consumer<ChannelPipeline> initializer) {
            this.clientInitializer = Objects.requireNonNull(initializer, "initializer");
            return this;
        }

        /** Adds handlers after the server's SslHandler (replaces the default RecordingHandler). */
        public Builder server(Consumer<ChannelPipeline> initializer) {
            this.serverInitializer = Objects.requireNonNull(initializer, "initializer");
            return this;
        }

        /** {@code addLast(handlers)} after the client's SslHandler (replaces the default RecordingHandler). */
        public Builder clientHandlers(ChannelHandler... handlers) {
            ChannelHandler[] copy = handlers.clone();
            return client(p -> p.addLast(copy));
        }

        /** {@code addLast(handlers)} after the server's SslHandler (replaces the default RecordingHandler). */
        public Builder serverHandlers(ChannelHandler... handlers) {
            ChannelHandler[] copy = handlers.clone();
            return server(p -> p.addLast(copy));
        }

        /**
         * Whether both channels report {@code ChannelOption.ALLOW_HALF_CLOSURE} as true, as a socket channel
         * configured for half-closure does: a FIN is then a {@code ChannelInputShutdownEvent}, not a close.
         */
        public Builder halfClosure(boolean halfClosure) {
            this.halfClosure = halfClosure;
            return this;
        }

        public TlsPair build() {
            return new TlsPair(this);
        }
    }

    // ---- accessors

    public EmbeddedChannel client() {
        return client;
    }

    public EmbeddedChannel server() {
        return server;
    }

    public EmbeddedChannel channel(Side side) {
        return side == Side.CLIENT ? client : server;
    }

    /** The client's SslHandler (the one created at construction, even if since removed from the pipeline). */
    public SslHandler clientSsl() {
        return clientSsl;
    }

    /** The server's SslHandler (the one created at construction, even if since removed from the pipeline). */
    public SslHandler serverSsl() {
        return serverSsl;
    }

    public SslHandler sslHandler(Side side) {
        return side == Side.CLIENT ? clientSsl : serverSsl;
    }

    /**
     * {@code side}'s {@link RecordingHandler}: the last one in its pipeline when the pair was built, else (if the
     * initializer added none) the last one currently in the pipeline; fails if there is none. Still available
     * after the channel was closed (which empties the pipeline).
     */
    public RecordingHandler recorder(Side side) {
        RecordingHandler found = side == Side.CLIENT ? clientRecorder : serverRecorder;
        if (found == null) {
            found = findRecorder(channel(side).pipeline());
        }
        if (found == null) {
            throw new AssertionError("no RecordingHandler in the " + side + " pipeline: " + channel(side).pipeline());
        }
        return found;
    }

    private static RecordingHandler findRecorder(ChannelPipeline pipeline) {
        RecordingHandler found = null;
        for (var entry : pipeline) {
            if (entry.getValue() instanceof RecordingHandler) {
                found = (RecordingHandler) entry.getValue();
            }
        }
        return found;
    }

    public RecordingHandler clientRecorder() {
        return recorder(Side.CLIENT);
    }

    public RecordingHandler serverRecorder() {
        return recorder(Side.SERVER);
    }

    // ---- moving bytes

    /**
     * Runs pending tasks and moves outbound buffers (one {@code writeInbound} per buffer) from each side to the
     * other, repeating until no bytes move and no tasks are pending.
     *
     * @return the number of bytes moved
     */
    public long pump() {
        long total = 0;
        for (int round = 0; round < MAX_PUMP_ROUNDS; round++) {
            runPendingTasks();
            long moved = moveEach(Side.CLIENT) + moveEach(Side.SERVER);
            total += moved;
            if (moved == 0 && !client.hasPendingTasks() && !server.hasPendingTasks()) {
                return total;
            }
        }
        throw new AssertionError("pump(): bytes still moving after " + MAX_PUMP_ROUNDS + " rounds");
    }

    /**
     * Pumps until both handshakes succeeded and the wire is quiet (so e.g. TLS 1.3 session tickets were
     * delivered). Fails with an {@link AssertionError} if a handshake fails or does not finish.
     */
    public void handshake() {
        for (int round = 0; round < MAX_HANDSHAKE_ROUNDS; round++) {
            long moved = pump();
            checkHandshakeFailure(Side.CLIENT);
            checkHandshakeFailure(Side.SERVER);
            if (clientSsl.handshakeFuture().isSuccess() && serverSsl.handshakeFuture().isSuccess()) {
                return;
            }
            if (moved == 0) {
                break;
            }
        }
        throw new AssertionError("handshake did not complete: client " + clientSsl.handshakeFuture()
                + ", server " + serverSsl.handshakeFuture()
                + ", pending outbound bytes client=" + pendingOutboundBytes(Side.CLIENT)
                + " server=" + pendingOutboundBytes(Side.SERVER));
    }

    private void checkHandshakeFailure(Side side) {
        var future = sslHandler(side).handshakeFuture();
        if (future.isDone() && !future.isSuccess()) {
            throw new AssertionError(side + " handshake failed", future.cause());
        }
    }

    /**
     * Moves all of {@code from}'s pending outbound bytes to its peer as ONE buffer (so e.g. a close_notify and
     * bytes queued after it arrive together).
     *
     * @return the number of bytes moved (nothing is delivered if 0)
     */
    public int forward(Side from) {
        byte[] bytes = drainOutbound(from);
        if (bytes.length > 0) {
            deliver(from.peer(), bytes);
        }
        return bytes.length;
    }

    /**
     * Moves all of {@code from}'s pending outbound bytes to its peer as two buffers, split at {@code splitAt}
     * (0 &lt; splitAt &lt; pending bytes), e.g. to cut a record in half.
     *
     * @return the number of bytes moved
     */
    public int forward(Side from, int splitAt) {
        byte[] bytes = drainOutbound(from);
        if (splitAt <= 0 || splitAt >= bytes.length) {
            throw new IllegalArgumentException("splitAt " + splitAt + " not inside the " + bytes.length
                    + " pending bytes of " + from);
        }
        deliver(from.peer(), bytes, splitAt);
        return bytes.length;
    }

    /** Removes {@code side}'s pending outbound buffers and returns their bytes, concatenated, without delivering. */
    public byte[] drainOutbound(Side side) {
        EmbeddedChannel channel = channel(side);
        ByteArrayOutputStream result = new ByteArrayOutputStream();
        for (;;) {
            Object msg = channel.readOutbound();
            if (msg == null) {
                return result.toByteArray();
            }
            result.writeBytes(toBytesAndRelease(side, msg));
        }
    }

    /** Number of bytes in {@code side}'s outbound queue (not removed). */
    public int pendingOutboundBytes(Side side) {
        int bytes = 0;
        for (Object msg : channel(side).outboundMessages()) {
            if (msg instanceof ByteBuf) {
                bytes += ((ByteBuf) msg).readableBytes();
            }
        }
        return bytes;
    }

    /** Whether {@code side} has outbound bytes waiting to be moved. */
    public boolean hasPendingOutbound(Side side) {
        return pendingOutboundBytes(side) > 0;
    }

    /**
     * Delivers {@code bytes} to {@code to} ({@code writeInbound}) as one buffer from the channel's allocator, or,
     * with {@code splitOffsets}, as several buffers cut at those (ascending) offsets. Dropped if {@code to} is
     * closed.
     *
     * @return whether the bytes were delivered (false if {@code to} is closed)
     */
    public boolean deliver(Side to, byte[] bytes, int... splitOffsets) {
        EmbeddedChannel channel = channel(to);
        int start = 0;
        int[] ends = Arrays.copyOf(splitOffsets, splitOffsets.length + 1);
        ends[splitOffsets.length] = bytes.length;
        for (int end : ends) {
            if (end < start || end > bytes.length) {
                throw new IllegalArgumentException("bad split offsets " + Arrays.toString(splitOffsets)
                        + " for " + bytes.length + " bytes");
            }
            if (!channel.isOpen()) {
                return false;
            }
            ByteBuf buf = channel.alloc().buffer(end - start);
            buf.writeBytes(bytes, start, end - start);
            channel.writeInbound(buf);
            start = end;
        }
        return true;
    }

    /** Moves each outbound buffer of {@code from} separately; returns bytes moved. */
    private long moveEach(Side from) {
        EmbeddedChannel source = channel(from);
        EmbeddedChannel target = channel(from.peer());
        long moved = 0;
        for (;;) {
            Object msg = source.readOutbound();
            if (msg == null) {
                return moved;
            }
            ByteBuf buf = asByteBuf(from, msg);
            int readable = buf.readableBytes();
            if (readable == 0 || !target.isOpen()) {
                buf.release();
            } else {
                target.writeInbound(buf);
            }
            moved += readable;
        }
    }

    private static ByteBuf asByteBuf(Side side, Object msg) {
        if (!(msg instanceof ByteBuf)) {
            ReferenceCountUtil.release(msg);
            throw new AssertionError(side + " wrote a non-ByteBuf message: " + msg);
        }
        return (ByteBuf) msg;
    }

    private static byte[] toBytesAndRelease(Side side, Object msg) {
        ByteBuf buf = asByteBuf(side, msg);
        try {
            byte[] bytes = new byte[buf.readableBytes()];
            buf.getBytes(buf.readerIndex(), bytes);
            return bytes;
        } finally {
            buf.release();
        }
    }

    // ---- time and tasks

    /** Runs pending (and due scheduled) tasks on both channels. */
    public void runPendingTasks() {
        client.runPendingTasks();
        server.runPendingTasks();
    }

    /** Freezes both channels' clocks. */
    public void freezeTime() {
        client.freezeTime();
        server.freezeTime();
    }

    /** Advances both channels' clocks, then runs the tasks that became due. Does not move bytes. */
    public void advanceTimeBy(long duration, TimeUnit unit) {
        client.advanceTimeBy(duration, unit);
        server.advanceTimeBy(duration, unit);
        runPendingTasks();
    }

    /** {@code finishAndReleaseAll()} on both channels; rethrows the first exception either recorded. */
    @Override
    public void close() {
        Throwable failure = null;
        for (EmbeddedChannel channel : new EmbeddedChannel[] {client, server}) {
            try {
                channel.finishAndReleaseAll();
            } catch (Throwable t) {
                if (failure == null) {
                    failure = t;
                } else {
                    failure.addSuppressed(t);
                }
            }
        }
        if (failure instanceof RuntimeException) {
            throw (RuntimeException) failure;
        }
        if (failure instanceof Error) {
            throw (Error) failure;
        }
        if (failure != null) {
            throw new IllegalStateException("exception while closing the channels", failure);
        }
    }

    @Override
    public String toString() {
        return "TlsPair[client=" + client.pipeline().names() + ", server=" + server.pipeline().names() + "]";
    }
}
