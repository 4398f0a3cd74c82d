package dev.kafkapdp.shim;

import java.lang.management.ManagementFactory;
import java.lang.ref.Reference;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.apache.kafka.metadata.authorizer.StandardAuthorizer;
import org.apache.kafka.server.authorizer.AuthorizationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs the shim's benchmarks in one go and prints them side by side, as ratios against the bare map lookup
 * measured in the same run:
 * <ol>
 *   <li>estimates the heap the cache takes at its default size;</li>
 *   <li>writes the workload's ACLs as Cedar policies, starts the PDP on them (once, for the whole run) and checks
 *   that it and Kafka's StandardAuthorizer give the same decision on every sampled action (otherwise the
 *   comparison would be meaningless);</li>
 *   <li>runs {@link AuthorizeBenchmark} through JMH's API and prints the table.</li>
 * </ol>
 * System properties: {@code pdp.binary} (required), {@code bench.resources} (the PDP workload, default 10000;
 * Kafka's StandardAuthorizer is always measured at 10,000 too), {@code bench.quick}
 * (short iterations and one fork, while developing), {@code bench.forks} (JVM forks per benchmark, default 3:
 * one fork's JIT decisions alone move a nanosecond-scale result by 10 % or more), {@code bench.include} (a regex of
 * benchmark methods, for development; the reported figures come from a run of all five).
 *
 * <p>The forks run the unrelocated {@code grpc-netty-shaded}; its Netty loads the native epoll transport on Linux,
 * as the installed jar's does.
 */
public final class BenchMain {

    /** The resource count of Kafka's own AuthorizerBenchmark that this run compares with. */
    private static final int KAFKA_BENCHMARK_RESOURCES = 10_000;

    private BenchMain() {
    }

    public static void main(String[] args) throws Exception {
        Path binary = Path.of(System.getProperty("pdp.binary", "../target/release/kafka-pdp"));
        boolean quick = Boolean.getBoolean("bench.quick");
        Workload workload = Workload.fromSystemProperties();
        Path policyDir = Files.createTempDirectory("kafka-pdp-bench-policies");
        workload.writePolicyDir(policyDir, Path.of("..", "policies", "schema.cedarschema"));
        String include = System.getProperty("bench.include", "");
        System.out.println("load average at start: " + loadAverage());
        measureCacheHeap();

        try {
            run(workload, binary, policyDir, include, quick);
        } finally {
            deleteTree(policyDir);
        }
    }

    private static void run(Workload workload, Path binary, Path policyDir, String include, boolean quick)
        throws Exception {
        long startedAt = System.nanoTime();
        try (PdpProcess pdp = PdpProcess.start(binary, policyDir, 3_600)) {
            System.out.printf(Locale.ROOT, "PDP: %s loaded the policies and listens on %s after %.1f s%n", binary,
                pdp.address(), (System.nanoTime() - startedAt) / 1e9);
            checkEquivalence(workload, pdp.address());

            OptionsBuilder builder = new OptionsBuilder();
            String profiler = System.getProperty("bench.profiler", "");
            if (!profiler.isEmpty()) {
                // JMH's -prof syntax: a name, then options after a colon (`gc`, `async:libPath=...;event=itimer`).
                int colon = profiler.indexOf(':');
                if (colon < 0) {
                    builder.addProfiler(profiler);
                } else {
                    builder.addProfiler(profiler.substring(0, colon), profiler.substring(colon + 1));
                }
            }
            Options options = builder
                .include(AuthorizeBenchmark.class.getName() + "\\." + (include.isEmpty() ? "" : "(" + include + ")"))
                .forks(quick ? 1 : Integer.getInteger("bench.forks", 3))
                .threads(1)
                .warmupIterations(quick ? 1 : 4)
                .warmupTime(TimeValue.seconds(quick ? 1 : 2))
                .measurementIterations(quick ? 2 : 8)
                .measurementTime(TimeValue.seconds(quick ? 1 : 2))
                .jvmArgsAppend("-Dpdp.address=" + pdp.address(), "-Dbench.resources=" + workload.resources)
                .param("standardResources", standardSizes(workload.resources))
                .build();
            Collection<RunResult> results = new Runner(options).run();
            System.out.println();
            System.out.printf("workload: %,d resources x %d ACLs (%,d ACL entries = Cedar policies), %d sampled"
                    + " actions, PDP binary %s%n", workload.resources, Workload.ACLS_PER_RESOURCE,
                workload.acls.size(), Workload.SAMPLES, binary);
            System.out.println("load average at end: " + loadAverage() + " (the machine is shared; compare ratios)");
            printTable(results);
        }
    }

    /** Kafka's benchmark size, and the PDP workload's size too when it differs. */
    private static String[] standardSizes(int pdpResources) {
        return pdpResources == KAFKA_BENCHMARK_RESOURCES ? new String[] {Integer.toString(pdpResources)}
            : new String[] {Integer.toString(pdpResources), Integer.toString(KAFKA_BENCHMARK_RESOURCES)};
    }

    private static void checkEquivalence(Workload workload, String address) throws Exception {
        StandardAuthorizer kafka = AuthorizeBenchmark.loadStandardAuthorizer(workload.acls);
        int agree = 0;
        int allowed = 0;
        List<String> disagreements = new ArrayList<>();
        PdpAuthorizer shim = AuthorizeBenchmark.shim(address, 0);
        try {
            for (var actions : workload.samples) {
                AuthorizationResult expected = kafka.authorize(workload.context, actions).get(0);
                AuthorizationResult actual = shim.authorize(workload.context, actions).get(0);
                if (expected == actual) {
                    agree++;
                } else if (disagreements.size() < 5) {
                    disagreements.add(actions.get(0) + ": Kafka " + expected + ", PDP " + actual);
                }
                allowed += actual == AuthorizationResult.ALLOWED ? 1 : 0;
            }
        } finally {
            shim.close();
            kafka.close();
        }
        System.out.printf("equivalence: PDP and StandardAuthorizer agree on %d of %d sampled actions (%d allowed)%n",
            agree, workload.samples.size(), allowed);
        if (agree != workload.samples.size()) {
            throw new IllegalStateException("the Cedar policies are not equivalent to the ACLs: " + disagreements);
        }
    }

    /**
     * Fills a cache of the default size with distinct keys (each with its own request key and resource-name
     * string, as cache misses create them; principal and client-id strings shared per connection) and reads
     * the used heap after full GCs before and after; then inserts three times as many more and reads it
     * again, to show the bound holds.
     */
    private static void measureCacheHeap() {
        int max = PdpConfig.CACHE_MAX_ENTRIES_DEFAULT;
        DecisionCache cache = new DecisionCache(max, PdpConfig.CACHE_TTL_MS_DEFAULT);
        cache.onPolicyVersion("bench");
        InetAddress address = InetAddress.getLoopbackAddress();
        long before = usedHeapAfterGc();
        fill(cache, address, 0, max);
        long full = usedHeapAfterGc();
        fill(cache, address, max, 4 * max);
        long overfilled = usedHeapAfterGc();
        Reference.reachabilityFence(cache);
        System.out.printf(Locale.ROOT, "cache heap (used heap after System.gc(), before/after filling): %,d entries"
                + " take %.1f MiB (%d bytes/entry); after %,d more insertions: %,d entries, %.1f MiB%n",
            cache.size(), (full - before) / 1048576.0, (full - before) / max, 3 * max, cache.size(),
            (overfilled - before) / 1048576.0);
    }

    private static void fill(DecisionCache cache, InetAddress address, int from, int to) {
        // 1,000 connections: their principal and client-id strings are held by the broker's sessions anyway.
        String[] principals = new String[1000];
        String[] clientIds = new String[1000];
        for (int c = 0; c < 1000; c++) {
            principals[c] = "service-" + c;
            clientIds[c] = "client-" + c;
        }
        long now = System.nanoTime();
        for (int i = from; i < to; i++) {
            DecisionKey key = DecisionKey.of("User", principals[i % 1000], address, "CLIENT",
                SecurityProtocol.SASL_SSL, clientIds[i % 1000], 1, AclOperation.READ, ResourceType.TOPIC,
                "phi.labs.results-" + i, PatternType.LITERAL);
            // One determining policy per answer, as a grant would give; the list is the PDP response's own.
            cache.put(new Answer(key, true, "bench", List.of("grant-" + (i % 1000)), true, true), cache.generation(),
                now);
        }
    }

    private static void deleteTree(Path dir) throws java.io.IOException {
        try (var paths = Files.walk(dir)) {
            for (Path path : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }

    /** The 1, 5 and 15 minute load averages, so that a reader can tell how busy the machine was. */
    private static String loadAverage() {
        try {
            String[] fields = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return fields[0] + " " + fields[1] + " " + fields[2];
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    private static long usedHeapAfterGc() {
        for (int i = 0; i < 4; i++) {
            System.gc();
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    private static void printTable(Collection<RunResult> results) {
        Map<String, Result<?>> byName = new TreeMap<>();
        for (RunResult run : results) {
            String name = run.getParams().getBenchmark();
            String row = name.substring(name.lastIndexOf('.') + 1);
            String size = run.getParams().getParam("standardResources");
            if (row.startsWith("kafka") && size != null) {
                row += String.format(Locale.ROOT, " (%,d resources)", Integer.parseInt(size));
            }
            byName.put(row, run.getPrimaryResult());
        }
        Result<?> baseline = byName.get("baselineConcurrentHashMapGet");
        Result<?> grpcFloor = byName.get("baselineGrpcHealthCheck");
        System.out.println("| benchmark | ns per decision (mean) | ± (99.9 % CI) | ratio to bare ConcurrentHashMap.get"
            + " | p50 | p99 | p50 ratio to bare gRPC call |");
        System.out.println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        List<String> order = new ArrayList<>(List.of("baselineConcurrentHashMapGet", "pdpAuthorizerCached"));
        byName.keySet().stream().filter(name -> name.startsWith("kafka")).forEach(order::add);
        order.addAll(List.of("baselineGrpcHealthCheck", "pdpAuthorizerUncached"));
        for (String name : order) {
            Result<?> result = byName.get(name);
            if (result == null) {
                continue;
            }
            double ns = nanos(result);
            double error = ns * result.getScoreError() / result.getScore();
            String ratio = baseline == null ? "" : String.format(Locale.ROOT, "%,.2fx", ns / nanos(baseline));
            String p50 = "";
            String p99 = "";
            String floorRatio = "";
            if (result.getScoreUnit().startsWith("us")) {
                double median = result.getStatistics().getPercentile(50.0);
                p50 = String.format(Locale.ROOT, "%.1f us", median);
                p99 = String.format(Locale.ROOT, "%.1f us", result.getStatistics().getPercentile(99.0));
                if (grpcFloor != null) {
                    floorRatio = String.format(Locale.ROOT, "%.2fx",
                        median / grpcFloor.getStatistics().getPercentile(50.0));
                }
            }
            System.out.printf(Locale.ROOT, "| %s | %,.1f | %,.1f | %s | %s | %s | %s |%n", name, ns, error, ratio, p50,
                p99, floorRatio);
        }
    }

    private static double nanos(Result<?> result) {
        String unit = result.getScoreUnit();
        double score = result.getScore();
        if (unit.startsWith("us")) {
            return score * 1_000;
        }
        if (unit.startsWith("ms")) {
            return score * 1_000_000;
        }
        return score;
    }
}
