package io.github.gracefultls.testing;

import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;
import io.netty.util.ResourceLeakTracker;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A {@link ResourceLeakDetectorFactory} whose detectors record every reported leak in
 * {@link LeakDetectionExtension}'s static list (and still log it as Netty normally does).
 * <p>
 * It must be installed before Netty creates its static detectors, in particular before
 * {@code io.netty.buffer.AbstractByteBuf} is initialized; see {@link LeakDetectionExtension#install()}.
 */
final class RecordingLeakDetectorFactory extends ResourceLeakDetectorFactory {

    /** Every detector this factory has created; polled by {@link #pollAll()}. */
    private final List<RecordingLeakDetector<?>> detectors = new CopyOnWriteArrayList<>();

    @Override
    public <T> ResourceLeakDetector<T> newResourceLeakDetector(Class<T> resource, int samplingInterval) {
        RecordingLeakDetector<T> detector = new RecordingLeakDetector<>(resource, samplingInterval);
        detectors.add(detector);
        return detector;
    }

    @Override
    @Deprecated
    public <T> ResourceLeakDetector<T> newResourceLeakDetector(
            Class<T> resource, int samplingInterval, long maxActive) {
        return newResourceLeakDetector(resource, samplingInterval);
    }

    /** Whether this factory created a detector for the given resource class. */
    boolean hasDetectorFor(Class<?> resource) {
        for (RecordingLeakDetector<?> detector : detectors) {
            if (detector.resource == resource) {
                return true;
            }
        }
        return false;
    }

    /**
     * Makes every detector drain its reference queue. {@link ResourceLeakDetector} only reports
     * leaks when a new object is tracked, so track a throwaway object and close its tracker.
     */
    void pollAll() {
        for (RecordingLeakDetector<?> detector : detectors) {
            detector.poll();
        }
    }

    static final class RecordingLeakDetector<T> extends ResourceLeakDetector<T> {
        final Class<T> resource;

        RecordingLeakDetector(Class<T> resource, int samplingInterval) {
            super(resource, samplingInterval);
            this.resource = resource;
        }

        @SuppressWarnings("unchecked")
        void poll() {
            // The tracker keeps only a weak reference and an identity hash; the type is never checked.
            T probe = (T) new Object();
            ResourceLeakTracker<T> tracker = trackForcibly(probe);
            tracker.close(probe);
        }

        @Override
        protected boolean needReport() {
            // Record leaks even if Netty's error logging is switched off.
            return true;
        }

        @Override
        protected void reportTracedLeak(String resourceType, String records) {
            LeakDetectionExtension.recordLeak(resourceType, records);
            super.reportTracedLeak(resourceType, records);
        }

        @Override
        protected void reportUntracedLeak(String resourceType) {
            LeakDetectionExtension.recordLeak(resourceType, "(untraced: no access records)");
            super.reportUntracedLeak(resourceType);
        }
    }
}
