package io.github.gracefultls;

import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

/** {@link SocketClosureTest} over the NIO transport. */
class NioSocketClosureTest extends SocketClosureTest {

    @Override
    protected Transport transport() {
        return new Transport() {
            @Override
            @SuppressWarnings("deprecation") // NioEventLoopGroup: deprecated in Netty 4.2, the form 4.1 has too
            public EventLoopGroup newEventLoopGroup() {
                return new NioEventLoopGroup(1);
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
