package io.github.gracefultls.testing;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Fails tests that leak Netty reference-counted resources ({@code ByteBuf}s, OpenSSL engines, ...).
 * <p>
 * Registered for JUnit auto-detection via {@code META-INF/services/org.junit.jupiter.api.extension.Extension}
 * (surefire sets {@code junit.jupiter.extensions.autodetection.enabled=true}). The recording detector
 * factory is installed at launcher session start by {@link LeakDetectionLauncherSessionListener}, i.e.
 * before any Netty buffer class is initialized. After each test (and after each test class), garbage is
 * collected, every detector polls its reference queue, and any recorded leak fails the test.
 * <p>
 * Leaks are attributed to the test during or after which they were detected; resources released
 * asynchronously (e.g. by an event loop that is still shutting down) may surface in a later test.
 */
public final class LeakDetectionExtension implements BeforeAllCallback, AfterEachCallback, AfterAllCallback {

    private static final int GC_ROUNDS = 2;
    private static final long GC_WAIT_MILLIS = 500;

    private static final List<String> LEAKS = new CopyOnWriteArrayList<>();
    private static final RecordingLeakDetectorFactory FACTORY = new RecordingLeakDetectorFactory();
    private static volatile boolean installedInTime;

    static {
        install();
    }

    /**
     * Installs the recording factory (idempotent) and forces paranoid leak detection. Must run before
     * {@code io.netty.buffer.AbstractByteBuf} is initialized, since that class creates its detector once.
     */
    public static synchronized void install() {
        if (ResourceLeakDetectorFactory.instance() != FACTORY) {
            ResourceLeakDetectorFactory.setResourceLeakDetectorFactory(FACTORY);
        }
        if (ResourceLeakDetector.getLevel() != ResourceLeakDetector.Level.PARANOID) {
            ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
        }
        try {
            // Initialize AbstractByteBuf now, so that its static detector comes from our factory.
            Class.forName("io.netty.buffer.AbstractByteBuf", true, LeakDetectionExtension.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException("netty-buffer is not on the test class path", e);
        }
        installedInTime = FACTORY.hasDetectorFor(ByteBuf.class);
    }

    /** Whether the ByteBuf leak detector is ours, i.e. the factory was installed before netty-buffer initialized. */
    public static boolean isInstalledInTime() {
        return installedInTime;
    }

    static void recordLeak(String resourceType, String records) {
        LEAKS.add("LEAK of " + resourceType + ":" + records);
    }

    /**
     * Runs the garbage collector, makes every leak detector poll its reference queue, and returns all
     * leaks recorded so far (without clearing them).
     */
    public static List<String> collectLeaks() {
        for (int i = 0; i < GC_ROUNDS; i++) {
            gcAndAwaitReferenceProcessing();
            exerciseAllocators();
            FACTORY.pollAll();
        }
        return new ArrayList<>(LEAKS);
    }

    /** Forgets all recorded leaks. */
    public static void clearLeaks() {
        LEAKS.clear();
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        if (!installedInTime) {
            throw new IllegalStateException(
                    "Netty's ByteBuf leak detector was created before " + LeakDetectionExtension.class.getName()
                            + " installed its ResourceLeakDetectorFactory; leaks cannot be detected. Is "
                            + "LeakDetectionLauncherSessionListener registered in META-INF/services?");
        }
    }

    @Override
    public void afterEach(ExtensionContext context) {
        failOnLeaks("test " + context.getDisplayName());
    }

    @Override
    public void afterAll(ExtensionContext context) {
        failOnLeaks("test class " + context.getDisplayName());
    }

    private static void failOnLeaks(String where) {
        List<String> leaks = collectLeaks();
        if (leaks.isEmpty()) {
            return;
        }
        LEAKS.removeAll(leaks);
        StringBuilder message = new StringBuilder()
                .append(leaks.size()).append(" Netty resource leak(s) detected after ").append(where).append(':');
        for (String leak : leaks) {
            message.append(System.lineSeparator()).append(leak);
        }
        throw new AssertionError(message.toString());
    }

    /** Allocates and releases buffers so that the ByteBuf detector is exercised by the allocators themselves. */
    private static void exerciseAllocators() {
        ByteBufAllocator[] allocators = {
                PooledByteBufAllocator.DEFAULT, UnpooledByteBufAllocator.DEFAULT, ByteBufAllocator.DEFAULT,
        };
        for (ByteBufAllocator allocator : allocators) {
            allocator.heapBuffer(1).release();
            allocator.directBuffer(1).release();
        }
    }

    /** System.gc(), then wait until a weakly reachable sentinel has been enqueued by the reference handler. */
    private static void gcAndAwaitReferenceProcessing() {
        ReferenceQueue<Object> queue = new ReferenceQueue<>();
        WeakReference<Object> sentinel = new WeakReference<>(new Object(), queue);
        long deadline = System.nanoTime() + GC_WAIT_MILLIS * 1_000_000L;
        try {
            while (System.nanoTime() < deadline) {
                System.gc();
                if (queue.remove(20) == sentinel) {
                    return;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
