package io.github.gracefultls.interop;

import io.github.gracefultls.testing.Transport;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.uring.IoUring;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The transports of the matrix (the test-jar's {@link Transport}, the one list of every socket test). NIO and epoll
 * must run here. io_uring runs where the kernel allows it: when
 * {@link IoUring#isAvailable()} its event loop must start (and its cells must pass); when not, its cells are skipped
 * as not runnable, with the reason, and so is this one.
 */
@ExtendWith(InteropReport.class)
class TransportTest {

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport.class)
    void transportRunsHere(Transport transport) throws Exception {
        if (transport == Transport.IO_URING) {
            InteropReport.observe(IoUring.isAvailable() ? "io_uring available, kernel "
                    + System.getProperty("os.version") : "io_uring unavailable: " + IoUring.unavailabilityCause());
        }
        transport.requireAvailable();
        EventLoopGroup group = transport.newGroup(1);
        try {
            assertThat(group.next().submit(() -> "ran").get(5, TimeUnit.SECONDS)).isEqualTo("ran");
        } finally {
            assertThat(group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS)).isTrue();
        }
    }
}
