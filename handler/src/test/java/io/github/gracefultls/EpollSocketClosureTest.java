package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;

/** {@link SocketClosureTest} over the native epoll transport, which must be available (it is not skipped). */
class EpollSocketClosureTest extends SocketClosureTest {

    @Override
    protected Transport transport() {
        Epoll.ensureAvailability();
        return new Transport() {
            @Override
            @SuppressWarnings("deprecation") // EpollEventLoopGroup: deprecated in Netty 4.2, the form 4.1 has too
            public EventLoopGroup newEventLoopGroup() {
                return new EpollEventLoopGroup(1);
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
