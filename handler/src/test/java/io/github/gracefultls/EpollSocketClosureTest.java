package io.github.gracefultls;

import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;

/** {@link SocketClosureTest} over the native epoll transport, which must be available (it is not skipped). */
class EpollSocketClosureTest extends SocketClosureTest {

    @SuppressWarnings("deprecation") // EpollEventLoopGroup: deprecated in Netty 4.2, the form 4.1 has too
    EpollSocketClosureTest() {
        super(() -> {
            Epoll.ensureAvailability();
            return new EpollEventLoopGroup(1);
        }, EpollSocketChannel.class, EpollServerSocketChannel.class);
    }
}
