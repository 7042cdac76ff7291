package io.github.gracefultls.benchmarks;

import io.github.gracefultls.testing.Peers;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.openjdk.jmh.profile.GCProfiler;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs every benchmark in its quick mode and checks that it ran and produced numbers. It asserts no timing: the
 * figures are in docs/BENCHMARKS.md, measured on a quiet machine. JMH runs in this JVM (no fork), for a fraction of
 * a second per benchmark.
 */
class BenchmarksSmokeTest {

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void dataPathBenchmarkRuns() throws RunnerException {
        Collection<RunResult> results = jmh(DataPathBenchmark.class, false, "size", "64");
        assertThat(results).hasSize(4); // JDK and OPENSSL, with and without the handler
        for (RunResult r : results) {
            assertThat(r.getPrimaryResult().getScore()).as(label(r)).isPositive().isFinite();
        }
    }

    @ParameterizedTest(name = "{0} control={1}")
    @CsvSource({"JDK, false", "OPENSSL, false", "OPENSSL, true"})
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void dataPathPairedRuns(SslProvider provider, boolean hop) {
        DataPathPaired.Result r = DataPathPaired.run(provider, TlsContexts.TLS_1_3, 64, 1, 20, hop);
        DataPathPaired.print(r);
        assertThat(r.ratio().n()).isPositive();
        assertThat(r.ratio().median()).isPositive().isFinite();
        assertThat(r.with().median()).isPositive().isFinite();
        assertThat(r.without().median()).isPositive().isFinite();
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void closureBenchmarkRunsWithTheGcProfiler() throws RunnerException {
        Collection<RunResult> results = jmh(ClosureBenchmark.class, true, "protocol", "TLSv1.3");
        assertThat(results).hasSize(4); // JDK and OPENSSL, graceful and netty
        for (RunResult r : results) {
            assertThat(r.getPrimaryResult().getScore()).as(label(r)).isPositive().isFinite();
            Result<?> alloc = r.getSecondaryResults().get("gc.alloc.rate.norm");
            assertThat(alloc).as(label(r) + " gc.alloc.rate.norm").isNotNull();
            assertThat(alloc.getScore()).as(label(r)).isPositive();
        }
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void bulkTransferRuns() throws Exception {
        BulkTransfer.Result r = BulkTransfer.run(SslProvider.OPENSSL, TlsContexts.TLS_1_3, 8L << 20, 1, false);
        BulkTransfer.print(r);
        assertThat(r.withHandler()).hasSize(1).allSatisfy(v -> assertThat(v).isPositive().isFinite());
        assertThat(r.without()).hasSize(1).allSatisfy(v -> assertThat(v).isPositive().isFinite());
        assertThat(r.ratio()).isPositive().isFinite();
        assertThat(r.cpuWith()).hasSize(1).allSatisfy(v -> assertThat(v).isPositive().isFinite());
        assertThat(r.cpuWithout()).hasSize(1).allSatisfy(v -> assertThat(v).isPositive().isFinite());
        assertThat(r.cpuRatio()).isPositive().isFinite();
    }

    @Test
    @Timeout(value = 30, unit = TimeUnit.SECONDS)
    void pinMovesAnEventLoopThreadToTheGivenCpu() throws Exception {
        EventLoopGroup group = Net.group("smoke-pin");
        try {
            assertThat(Net.pin(group, 0)).endsWith("-> cpu 0");
            // The kernel's view of the thread, read by the thread itself: only CPU 0 is allowed.
            String allowed = group.submit(() -> Files.readAllLines(Paths.get("/proc/thread-self/status")).stream()
                    .filter(l -> l.startsWith("Cpus_allowed_list:")).findFirst().orElseThrow())
                    .get(10, TimeUnit.SECONDS);
            assertThat(allowed.split(":")[1].trim()).isEqualTo("0");
        } finally {
            Net.shutdown(group);
        }
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void closeLatencyRunsAndDrawsItsChart() throws Exception {
        List<CloseLatency.Point> points = CloseLatency.run(SslProvider.OPENSSL, TlsContexts.TLS_1_3, List.of(0, 10), 2);
        CloseLatency.print("smoke", points);
        assertThat(points).hasSize(2);
        for (CloseLatency.Point p : points) {
            assertThat(p.graceful()).hasSize(2).allSatisfy(v -> assertThat(v).isPositive());
            assertThat(p.netty()).hasSize(2).allSatisfy(v -> assertThat(v).isPositive());
            assertThat(p.gracefulUnclean()).isZero();
        }
        Path chart = Path.of("target", "close-latency-smoke.png");
        LatencyChart.write(chart, "smoke test", points);
        assertThat(Files.size(chart)).isPositive();
    }

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void closureAtScaleRuns() throws Exception {
        ClosureAtScale.Result r = ClosureAtScale.run(SslProvider.OPENSSL, TlsContexts.TLS_1_3, 100, 0, 1);
        ClosureAtScale.print(r);
        assertThat(r.rounds()).hasSize(2);
        for (ClosureAtScale.Round round : r.rounds()) {
            assertThat(round.allMillis()).as(round.variant()).isPositive();
            if (round.variant().equals(ClosureAtScale.GRACEFUL)) {
                // Every connection gets its one event, on both sides.
                assertThat(round.clientEvents()).isEqualTo(100);
                assertThat(round.serverEvents()).isEqualTo(100);
            }
        }
        assertThat(r.clientLeaks()).isZero();
        assertThat(r.serverLeaks()).isZero();
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = SslProvider.class, names = {"JDK", "OPENSSL"})
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void connectionCostRuns(SslProvider provider) throws Exception {
        ConnectionCost.Result r = ConnectionCost.run(provider, TlsContexts.TLS_1_3, 100);
        ConnectionCost.print(r);
        assertThat(r.shallow()).allSatisfy((k, v) -> assertThat(v).as(k).isPositive());
        assertThat(r.layouts()).hasSize(4).allSatisfy((k, v) -> assertThat(v).as(k).isPositive());
        assertThat(r.heapPerConnection()).isNotEmpty();
        assertThat(r.scheduledTasks()).isNotEmpty();
    }

    /**
     * A truncating upstream through {@code TlsCloseRelay}, both signals, OpenSSL, 64 KiB, clients reading at once,
     * a drain of 300 ms. curl and Python run when installed (a missing one fails the run when {@code CI=true}).
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void relayTruncationRuns() throws Exception {
        List<RelayTruncation.Client> clients = new ArrayList<>(List.of(RelayTruncation.Client.NETTY,
                RelayTruncation.Client.SSLSOCKET, RelayTruncation.Client.DIRECT));
        String curl = "curl";
        String python = "python3";
        if (Peers.isCi() || Peers.find(Peers.Program.CURL).isPresent()) {
            curl = Peers.require(Peers.Program.CURL).toString();
            clients.add(RelayTruncation.Client.CURL);
        }
        if (Peers.isCi() || Peers.find(Peers.Program.PYTHON3).isPresent()) {
            python = Peers.requirePython().toString();
            clients.add(RelayTruncation.Client.PYTHON);
            clients.add(RelayTruncation.Client.PYTHON_STRICT);
        }
        String go = "go";
        if (Peers.isCi() || Peers.find(Peers.Program.GO).isPresent()) {
            go = Peers.require(Peers.Program.GO).toString();
            clients.add(RelayTruncation.Client.GO);
        } else {
            System.out.println("relayTruncationRuns: no go on the PATH, the Go client is skipped");
        }
        long size = 64 << 10;
        RelayTruncation.Config config = new RelayTruncation.Config(size, List.of(0),
                List.of(RelayTruncation.Signal.FIN, RelayTruncation.Signal.RESET), List.of(SslProvider.OPENSSL),
                TlsContexts.TLS_1_3, clients, Duration.ofMillis(300), curl, python, go);
        List<RelayTruncation.Row> rows = RelayTruncation.run(config);
        RelayTruncation.print(config, rows);
        assertThat(rows).hasSize(1 + 2 * (clients.size() - 1));
        for (RelayTruncation.Row r : rows) {
            String label = r.signal() + " " + r.client().label;
            assertThat(r.report()).as(label).isNotEmpty().doesNotContain("BYTES DIFFER").doesNotContain("did not end");
            assertThat(r.body()).as(label).isBetween(0L, size);
            if (r.client() == RelayTruncation.Client.DIRECT || r.signal().equals("FIN")) {
                assertThat(r.complete()).as(label + ": every byte").isTrue();
            }
            if (r.client() == RelayTruncation.Client.NETTY) {
                assertThat(r.report()).as(label).startsWith("TRUNCATED");
            }
            if (r.client() == RelayTruncation.Client.GO) {
                // What the Go application sees, then what the socket under crypto/tls saw: a bare FIN is io.EOF to
                // the application, as a close_notify would be.
                assertThat(r.report()).as(label).isEqualTo(r.signal().equals("FIN")
                        ? "Read: io.EOF; socket: io.EOF"
                        : "Read: connection reset by peer; socket: connection reset by peer");
            }
            if (r.client() != RelayTruncation.Client.DIRECT) {
                assertThat(r.relay()).as(label).contains("backend TRUNCATED");
            }
        }
    }

    private static Collection<RunResult> jmh(Class<?> benchmark, boolean gcProfiler, String param, String value)
            throws RunnerException {
        OptionsBuilder options = new OptionsBuilder();
        options.include(benchmark.getSimpleName())
                .forks(0)
                .warmupIterations(0)
                .measurementIterations(1)
                .measurementTime(TimeValue.milliseconds(200))
                .param(param, value)
                .shouldFailOnError(true);
        if (gcProfiler) {
            options.addProfiler(GCProfiler.class);
        }
        Options built = options.build();
        return new Runner(built).run();
    }

    private static String label(RunResult r) {
        return r.getParams().getBenchmark() + " " + r.getParams();
    }
}
