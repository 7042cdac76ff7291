package io.github.gracefultls.benchmarks;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;

import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;

/**
 * A plain TCP relay on loopback that delays each direction by a fixed one-way delay, so that the client and the
 * server see a round-trip time of twice that ({@code tc netem} is not available here). Bytes, the end of a
 * direction (FIN, forwarded as {@code shutdownOutput()}) and a close are queued per direction with their due time
 * and go out in the order they came, never before their time: a queue per direction, drained by a timer set to the
 * head's due time, keeps the byte order whatever the timer's precision.
 */
final class DelayRelay {

    private static final Object FIN = new Object();
    private static final Object CLOSE = new Object();

    private final Channel server;

    /**
     * Starts a relay on an ephemeral loopback port to {@code targetPort}; both legs of each connection run on the
     * relay's single event loop.
     */
    DelayRelay(EventLoopGroup group, int targetPort, long oneWayDelayNanos) {
        server = Net.server(group, group, front -> {
            front.config().setAutoRead(false);
            front.pipeline().addLast(new Frontend(targetPort, oneWayDelayNanos));
        });
    }

    int port() {
        return Net.port(server);
    }

    void close() {
        server.close().syncUninterruptibly();
    }

    private static final class Frontend extends ChannelInboundHandlerAdapter {
        private final int targetPort;
        private final long delayNanos;

        Frontend(int targetPort, long delayNanos) {
            this.targetPort = targetPort;
            this.delayNanos = delayNanos;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            Channel front = ctx.channel();
            Direction toBack = new Direction(delayNanos);
            Direction toFront = new Direction(delayNanos);
            toFront.target = front;
            front.pipeline().addLast(new Leg(toBack));
            new Bootstrap()
                    .group(front.eventLoop())
                    .channel(EpollSocketChannel.class)
                    .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .handler(new Leg(toFront))
                    .connect(Net.LOOPBACK, targetPort)
                    .addListener((ChannelFutureListener) f -> {
                        if (f.isSuccess()) {
                            toBack.target = f.channel();
                            toBack.drain();
                            front.config().setAutoRead(true);
                        } else {
                            front.close();
                        }
                    });
            ctx.pipeline().remove(this);
        }
    }

    /** One side of a relayed connection: what it reads goes, delayed, to the other side. */
    private static final class Leg extends ChannelInboundHandlerAdapter {
        private final Direction out;

        Leg(Direction out) {
            this.out = out;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            out.add(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                out.add(FIN);
            }
            ReferenceCountUtil.release(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            out.add(CLOSE);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** One direction: a queue of (due time, message), drained in order on the event loop. */
    private static final class Direction {
        private final long delayNanos;
        private final ArrayDeque<Object> messages = new ArrayDeque<>();
        private final ArrayDeque<Long> dueTimes = new ArrayDeque<>();
        Channel target;
        private boolean timerSet;
        private boolean closed;

        Direction(long delayNanos) {
            this.delayNanos = delayNanos;
        }

        void add(Object msg) {
            if (closed) {
                ReferenceCountUtil.release(msg);
                return;
            }
            messages.add(msg);
            dueTimes.add(System.nanoTime() + delayNanos);
            if (msg == CLOSE) {
                closed = true;
            }
            drain();
        }

        void drain() {
            if (target == null || timerSet) {
                return;
            }
            boolean wrote = false;
            while (!messages.isEmpty()) {
                long wait = dueTimes.peek() - System.nanoTime();
                if (wait > 0) {
                    timerSet = true;
                    target.eventLoop().schedule(() -> {
                        timerSet = false;
                        drain();
                    }, wait, TimeUnit.NANOSECONDS);
                    break;
                }
                dueTimes.poll();
                Object msg = messages.poll();
                if (msg == FIN) {
                    target.flush();
                    wrote = false;
                    if (target instanceof DuplexChannel) {
                        ((DuplexChannel) target).shutdownOutput();
                    }
                } else if (msg == CLOSE) {
                    target.flush();
                    wrote = false;
                    target.close();
                } else {
                    target.write(msg, target.voidPromise());
                    wrote = true;
                }
            }
            if (wrote) {
                target.flush();
            }
        }
    }
}
