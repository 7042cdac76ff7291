package io.github.gracefultls.benchmarks;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Counts the leaks Netty's {@link ResourceLeakDetector} reports, at whatever level
 * {@code -Dio.netty.leakDetection.level} sets. Install it before any buffer is allocated.
 */
final class LeakCounter {

    private static final AtomicLong LEAKS = new AtomicLong();
    private static volatile boolean installed;

    private LeakCounter() {
    }

    static synchronized void install() {
        if (installed) {
            return;
        }
        installed = true;
        ResourceLeakDetectorFactory.setResourceLeakDetectorFactory(new ResourceLeakDetectorFactory() {
            @Override
            @SuppressWarnings("deprecation")
            public <T> ResourceLeakDetector<T> newResourceLeakDetector(Class<T> resource, int samplingInterval,
                                                                     long maxActive) {
                return new ResourceLeakDetector<T>(resource, samplingInterval) {
                    @Override
                    protected void reportTracedLeak(String resourceType, String records) {
                        LEAKS.incrementAndGet();
                        super.reportTracedLeak(resourceType, records);
                    }

                    @Override
                    protected void reportUntracedLeak(String resourceType) {
                        LEAKS.incrementAndGet();
                        super.reportUntracedLeak(resourceType);
                    }
                };
            }
        });
    }

    /**
     * Collects garbage and allocates enough buffers for the detector to look at its reference queue, then returns
     * the number of leaks reported so far.
     */
    static long collect() {
        for (int round = 0; round < 3; round++) {
            System.gc();
            try {
                Thread.sleep(50); // let the reference handler enqueue the collected buffers' trackers
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            for (int i = 0; i < 2_000; i++) {
                ByteBuf b = ByteBufAllocator.DEFAULT.buffer(8);
                b.release();
            }
        }
        return LEAKS.get();
    }

    static String level() {
        return ResourceLeakDetector.getLevel().name();
    }
}
