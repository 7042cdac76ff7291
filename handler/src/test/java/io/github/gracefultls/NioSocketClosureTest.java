package io.github.gracefultls;

import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

/** {@link SocketClosureTest} over the NIO transport. */
class NioSocketClosureTest extends SocketClosureTest {

    @SuppressWarnings("deprecation") // NioEventLoopGroup: deprecated in Netty 4.2, the form 4.1 has too
    NioSocketClosureTest() {
        super(() -> new NioEventLoopGroup(1), NioSocketChannel.class, NioServerSocketChannel.class);
    }
}
