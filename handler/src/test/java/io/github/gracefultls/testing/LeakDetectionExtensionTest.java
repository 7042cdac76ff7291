package io.github.gracefultls.testing;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class LeakDetectionExtensionTest {

    @AfterEach
    void clearDeliberateLeaks() {
        // Runs before the extension's after-each check, so the deliberate leaks do not fail the build.
        LeakDetectionExtension.clearLeaks();
    }

    @Test
    void factoryWasInstalledBeforeNettyBuffersInitialized() {
        assertThat(LeakDetectionExtension.isInstalledInTime()).isTrue();
        assertThat(ResourceLeakDetectorFactory.instance()).isInstanceOf(RecordingLeakDetectorFactory.class);
        assertThat(ResourceLeakDetector.getLevel()).isEqualTo(ResourceLeakDetector.Level.PARANOID);
    }

    // Unpooled heap buffers are not leak-tracked by Netty (plain GC'd arrays), so they are not covered.
    @ParameterizedTest
    @ValueSource(strings = {"unpooled-direct", "pooled-heap", "pooled-direct", "default-heap", "default-direct"})
    void leakedBufferIsDetected(String allocatorName) {
        LeakDetectionExtension.clearLeaks();
        leakBuffer(allocatorName);

        List<String> leaks = awaitLeaks();

        assertThat(leaks).isNotEmpty();
        assertThat(String.join("\n", leaks))
                .contains("LEAK of ByteBuf")
                .contains(LeakDetectionExtensionTest.class.getName() + ".leakBuffer");
    }

    @Test
    void releasedBufferIsNotReported() {
        LeakDetectionExtension.clearLeaks();
        ByteBuf buf = Unpooled.directBuffer(16);
        buf.writeInt(42);
        buf.release();

        assertThat(LeakDetectionExtension.collectLeaks()).isEmpty();
    }

    private static List<String> awaitLeaks() {
        List<String> leaks = LeakDetectionExtension.collectLeaks();
        for (int i = 0; i < 20 && leaks.isEmpty(); i++) {
            leaks = LeakDetectionExtension.collectLeaks();
        }
        return leaks;
    }

    /** Separate method, so that no reference to the buffer stays on the test's stack frame. */
    private static void leakBuffer(String allocatorName) {
        ByteBufAllocator allocator;
        boolean direct = allocatorName.endsWith("direct");
        switch (allocatorName) {
            case "unpooled-direct":
                allocator = UnpooledByteBufAllocator.DEFAULT;
                break;
            case "pooled-heap":
            case "pooled-direct":
                allocator = PooledByteBufAllocator.DEFAULT;
                break;
            default:
                allocator = ByteBufAllocator.DEFAULT;
        }
        ByteBuf buf = direct ? allocator.directBuffer(64) : allocator.heapBuffer(64);
        buf.writeLong(1234L); // recorded access
        // Netty reports a leak trace only once, and on Netty 4.1 ByteBufAllocator.DEFAULT is the pooled allocator,
        // whose traces would match the "pooled-*" cases: the hint keeps each case's trace distinct.
        buf.touch(allocatorName);
    }
}
