package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;

/** {@link SocketClosureTest} over the native epoll transport, which must be available (it is not skipped). */
class EpollSocketClosureTest extends SocketClosureTest {

    @Override
    protected Transport transport() {
        Epoll.ensureAvailability();
        return new Transport() {
            @Override
            public EventLoopGroup newEventLoopGroup() {
                return new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
            }

            @Override
            public Class<? extends ServerChannel> serverChannelClass() {
                return EpollServerSocketChannel.class;
            }

            @Override
            public Class<? extends Channel> channelClass() {
                return EpollSocketChannel.class;
            }
        };
    }
}
