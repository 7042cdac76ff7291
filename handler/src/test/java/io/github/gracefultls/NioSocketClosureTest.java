package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

/** {@link SocketClosureTest} over the NIO transport. */
class NioSocketClosureTest extends SocketClosureTest {

    @Override
    protected Transport transport() {
        return new Transport() {
            @Override
            public EventLoopGroup newEventLoopGroup() {
                return new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
            }

            @Override
            public Class<? extends ServerChannel> serverChannelClass() {
                return NioServerSocketChannel.class;
            }

            @Override
            public Class<? extends Channel> channelClass() {
                return NioSocketChannel.class;
            }
        };
    }
}
