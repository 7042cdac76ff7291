package io.github.gracefultls.interop;

import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseMode;
import io.github.gracefultls.TlsCloseStatus;
import io.github.gracefultls.TlsTruncationException;
import io.github.gracefultls.testing.EventLoops;
import io.github.gracefultls.testing.GnutlsKeys;
import io.github.gracefultls.testing.PeerProcess;
import io.github.gracefultls.testing.Resources;
import io.github.gracefultls.testing.TestCertificates;
import io.netty.channel.Channel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Base of the interop tests: event loops per transport, PEM files written for the peers, and resources that are
 * always released: {@link #perTest} after each test (channels, peer processes), {@link #perClass} after the class
 * (shared server peers). Every cell goes into the {@link InteropReport}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@ExtendWith(InteropReport.class)
abstract class InteropTest {

    static final Duration AWAIT = Endpoint.AWAIT;
    /** Bound for a peer process to start listening. */
    static final Duration LISTEN = Duration.ofSeconds(30);
    /** A read timeout that must not be reached: a clean closure ends "well under" it, however loaded the machine. */
    static final Duration LONG_TIMEOUT = Duration.ofSeconds(30);
    /**
     * On loopback one round trip is far below this; judged with the lateness of our side's event loop
     * ({@link #withinOneRoundTrip}).
     */
    static final Duration ONE_ROUND_TRIP = Duration.ofMillis(1000);

    static final Path PEERS_DIRECTORY = Path.of(System.getProperty("interop.peers", "src/test/peers"))
            .toAbsolutePath();

    final EventLoops loops = new EventLoops(2);
    private final Resources perTestResources = new Resources();
    private final Resources perClassResources = new Resources();
    private final Map<String, PeerProcess> sharedPeers = new HashMap<>();
    Path workDirectory;
    TestCertificates.PemFiles pem;
    /** The server key as SEC 1 with its public key, for GnuTLS ({@link GnutlsKeys}). */
    Path sec1Key;

    @BeforeAll
    void writeCertificates() throws IOException {
        workDirectory = Files.createTempDirectory("interop-" + getClass().getSimpleName() + "-");
        pem = TestCertificates.writePemFiles(workDirectory.resolve("pki"));
        sec1Key = GnutlsKeys.writeSec1ServerKey(workDirectory.resolve("pki"));
    }

    @AfterEach
    void releasePerTest() throws Exception {
        perTestResources.close();
    }

    @AfterAll
    void releasePerClass() throws Exception {
        try {
            perClassResources.close();
        } finally {
            try {
                loops.close();
            } finally {
                deleteRecursively(workDirectory);
            }
        }
    }

    /** Released after the current test, last registered first, even when it fails. */
    <T extends AutoCloseable> T perTest(T resource) {
        return perTestResources.add(resource);
    }

    /**
     * A peer shared by the cells of this class (a server serves them all), started by the first cell that needs it
     * and stopped after the class. If it died meanwhile, it is started again.
     */
    PeerProcess shared(String key, Supplier<PeerProcess> start) {
        PeerProcess peer = sharedPeers.get(key);
        if (peer == null || !peer.isAlive()) {
            peer = perClass(start.get());
            sharedPeers.put(key, peer);
        }
        return peer;
    }

    /** Released after the test class, last registered first. */
    <T extends AutoCloseable> T perClass(T resource) {
        return perClassResources.add(resource);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Assertions shared by the peers' tests
    // ------------------------------------------------------------------------------------------------------------

    static void assertEvent(TlsCloseEvent event, TlsCloseStatus status, TlsCloseInitiator initiator,
                            TlsCloseMode mode) {
        assertThat(event.status()).as("status of %s", event).isEqualTo(status);
        assertThat(event.initiator()).as("initiator of %s", event).isEqualTo(initiator);
        assertThat(event.mode()).as("mode of %s", event).isEqualTo(mode);
        assertThat(event.isClean()).as("isClean of %s", event).isEqualTo(status == TlsCloseStatus.CLOSE_NOTIFY_RECEIVED);
        if (status == TlsCloseStatus.CLOSE_NOTIFY_RECEIVED) {
            assertThat(event.cause()).as("cause of %s", event).isNull();
        } else {
            assertThat(event.cause()).as("cause of %s", event).isNotNull();
        }
    }

    /** A truncation, never clean, with a {@link TlsTruncationException} as its cause. */
    static TlsTruncationException assertTruncated(TlsCloseEvent event, TlsCloseInitiator initiator) {
        assertEvent(event, TlsCloseStatus.TRUNCATED, initiator, event.mode());
        assertThat(event.cause()).as("cause of %s", event).isInstanceOf(TlsTruncationException.class);
        return (TlsTruncationException) event.cause();
    }

    /** The first {@code size} bytes of the lines "%08d\n": the payload of every cell, and what the Python peer sends. */
    static byte[] lines(int size) {
        StringBuilder sb = new StringBuilder(size + 9);
        for (int i = 0; sb.length() < size; i++) {
            sb.append(String.format("%08d\n", i));
        }
        return sb.substring(0, size).getBytes(StandardCharsets.US_ASCII);
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** Compares bytes with a short message: lengths and the first difference, not the whole arrays. */
    static void assertBytes(byte[] actual, byte[] expected, String what) {
        if (Arrays.equals(actual, expected)) {
            return;
        }
        int i = Arrays.mismatch(actual, expected);
        throw new AssertionError(what + ": got " + actual.length + " bytes, expected " + expected.length
                + "; first difference at byte " + i + ": got \"" + excerpt(actual, i) + "\", expected \""
                + excerpt(expected, i) + "\"");
    }

    private static String excerpt(byte[] bytes, int from) {
        int start = Math.max(0, Math.min(from, bytes.length));
        int end = Math.min(bytes.length, start + 40);
        return new String(bytes, start, end - start, StandardCharsets.ISO_8859_1).replace("\n", "\\n");
    }

    /** Runs {@code task} on the channel's event loop and returns its result. */
    static <T> T onEventLoop(Channel channel, Callable<T> task)
            throws Exception {
        return channel.eventLoop().submit(task).get(AWAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    static String describe(TlsCloseEvent event) {
        return event.toString();
    }

    private static void deleteRecursively(Path directory) throws IOException {
        if (directory == null || !Files.exists(directory)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(directory)) {
            for (Path p : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }

    /**
     * {@link #ONE_ROUND_TRIP}, plus the lateness measured on {@code ours}'s event loop: an idle machine's round trip
     * stays bound by the constant, a loaded machine's late loop is reported, not failed.
     */
    static Duration withinOneRoundTrip(Endpoint ours) {
        return ours.lateness.allow(ONE_ROUND_TRIP);
    }
}
