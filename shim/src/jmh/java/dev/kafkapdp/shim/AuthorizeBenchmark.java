package dev.kafkapdp.shim;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.metrics.Metrics;
import org.apache.kafka.common.metrics.PluginMetrics;
import org.apache.kafka.common.metrics.internals.PluginMetricsImpl;
import org.apache.kafka.metadata.authorizer.StandardAcl;
import org.apache.kafka.metadata.authorizer.StandardAuthorizer;
import org.apache.kafka.server.authorizer.Action;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * One decision per invocation, cycling through the same 1,024 READ actions (fixed seed) in every benchmark:
 * a bare {@link ConcurrentHashMap} lookup as the baseline, {@link PdpAuthorizer} with a warm cache and without a
 * cache against the real PDP over loopback, and Kafka's {@link StandardAuthorizer} holding the equivalent ACLs.
 * The uncached decision has a second baseline: a bare unary gRPC call to the same PDP over the same loopback (its
 * health check), the floor that the machine's scheduler and network stack set for any round trip.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class AuthorizeBenchmark {

    /** Position in the sample list, per thread. */
    @State(Scope.Thread)
    public static class Cursor {
        int next;

        int advance() {
            return next++ & (Workload.SAMPLES - 1);
        }
    }

    /** The baseline: the resource names of the workload in a bare map. */
    @State(Scope.Benchmark)
    public static class Baseline {
        final ConcurrentHashMap<String, Boolean> map = new ConcurrentHashMap<>();
        String[] keys;

        @Setup(Level.Trial)
        public void setup() {
            Workload workload = Workload.fromSystemProperties();
            for (int r = 0; r < workload.resources; r++) {
                map.put(Workload.readOf(r).resourcePattern().name(), r % 3 != 0);
            }
            keys = new String[Workload.SAMPLES];
            for (int i = 0; i < Workload.SAMPLES; i++) {
                // A fresh String per key, as a request's deserialized resource name would be.
                keys[i] = new String(workload.samples.get(i).get(0).resourcePattern().name());
                keys[i].hashCode();
            }
        }
    }

    /**
     * Kafka's StandardAuthorizer loaded with the ACLs of a workload of {@code standardResources} resources: Kafka's
     * own benchmark size (10,000), and the PDP's size when that differs ({@link BenchMain} passes both).
     */
    @State(Scope.Benchmark)
    public static class Standard {
        @Param({"10000"})
        public int standardResources;
        Workload workload;
        StandardAuthorizer authorizer;

        @Setup(Level.Trial)
        public void setup() {
            workload = new Workload(standardResources);
            authorizer = loadStandardAuthorizer(workload.acls);
        }

        @TearDown(Level.Trial)
        public void tearDown() throws Exception {
            authorizer.close();
        }
    }

    /**
     * The real PDP with the equivalent Cedar policies, and two shims: cached (warmed) and uncached. The PDP runs for
     * the whole benchmark run ({@link BenchMain} starts it once, since loading 120,000 policies takes a while) and
     * its address arrives as {@code -Dpdp.address}.
     */
    @State(Scope.Benchmark)
    public static class Pdp {
        Workload workload;
        PdpAuthorizer cached;
        PdpAuthorizer uncached;

        @Setup(Level.Trial)
        public void setup() throws Exception {
            workload = Workload.fromSystemProperties();
            String address = System.getProperty("pdp.address");
            cached = shim(address, PdpConfig.CACHE_MAX_ENTRIES_DEFAULT);
            uncached = shim(address, 0);
            warm(cached, workload);
        }

        @TearDown(Level.Trial)
        public void tearDown() throws Exception {
            try {
                for (PdpAuthorizer shim : List.of(cached, uncached)) {
                    ShimMetrics metrics = shim.decider().metrics();
                    for (ShimMetrics.FailReason reason : ShimMetrics.FailReason.values()) {
                        if (metrics.failClosedCount(reason) > 0) {
                            throw new IllegalStateException("the benchmark saw fail-closed denials ("
                                + reason.tag + "); its figures would measure failures, not decisions");
                        }
                    }
                }
            } finally {
                cached.close();
                uncached.close();
            }
        }
    }

    /**
     * A gRPC channel of its own to the benchmark's PDP, built as the shim builds its channels (Netty, plaintext,
     * no retries), and the PDP's health check as a bare unary method: an empty request (service {@code ""}),
     * the answer's bytes unparsed.
     */
    @State(Scope.Benchmark)
    public static class GrpcFloor {
        /** {@code HealthCheckResponse{status: SERVING}} on the wire. */
        static final byte[] SERVING = {0x08, 0x01};
        static final byte[] EMPTY = {};
        ManagedChannel channel;
        final MethodDescriptor<byte[], byte[]> check = MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName("grpc.health.v1.Health/Check")
            .setRequestMarshaller(new Bytes())
            .setResponseMarshaller(new Bytes())
            .build();

        @Setup(Level.Trial)
        public void setup() {
            String address = System.getProperty("pdp.address");
            int colon = address.lastIndexOf(':');
            channel = NettyChannelBuilder
                .forAddress(new InetSocketAddress(address.substring(0, colon),
                    Integer.parseInt(address.substring(colon + 1))))
                .usePlaintext()
                .disableRetry()
                .userAgent("kafka-pdp-bench")
                .build();
            byte[] answer = call();
            if (!Arrays.equals(answer, SERVING)) {
                throw new IllegalStateException("the PDP's health check answered " + Arrays.toString(answer));
            }
        }

        byte[] call() {
            return ClientCalls.blockingUnaryCall(channel, check, CallOptions.DEFAULT.withDeadlineAfter(2,
                TimeUnit.SECONDS), EMPTY);
        }

        @TearDown(Level.Trial)
        public void tearDown() throws InterruptedException {
            channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    /** Messages as they are on the wire. */
    static final class Bytes implements MethodDescriptor.Marshaller<byte[]> {
        @Override
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    static StandardAuthorizer loadStandardAuthorizer(List<AclBinding> acls) {
        StandardAuthorizer authorizer = new StandardAuthorizer();
        authorizer.configure(Map.of("node.id", "1"));
        authorizer.withPluginMetrics(pluginMetrics("StandardAuthorizer"));
        for (AclBinding acl : acls) {
            authorizer.addAcl(Uuid.randomUuid(), StandardAcl.fromAclBinding(acl));
        }
        authorizer.completeInitialLoad();
        return authorizer;
    }

    /** Plug-in metrics as a broker hands them to its authorizer, so both authorizers pay for their metrics. */
    static PluginMetrics pluginMetrics(String className) {
        return new PluginMetricsImpl(new Metrics(), Map.of("config", "authorizer.class.name", "class", className));
    }

    static PdpAuthorizer shim(String address, int cacheEntries) {
        Map<String, Object> configs = new HashMap<>();
        configs.put(PdpConfig.ENDPOINTS_CONFIG, address);
        // Generous: a benchmark that hit the deadline would time failures. The tear-down checks none happened.
        configs.put(PdpConfig.DEADLINE_MS_CONFIG, "2000");
        configs.put(PdpConfig.CACHE_MAX_ENTRIES_CONFIG, Integer.toString(cacheEntries));
        PdpAuthorizer shim = new PdpAuthorizer();
        shim.configure(configs);
        shim.withPluginMetrics(pluginMetrics("PdpAuthorizer"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!shim.decider().policy().known()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the PDP at " + address + " reported no policy version");
            }
            Thread.onSpinWait();
        }
        return shim;
    }

    /** Fills the cache with a decision for every resource, in batches of 100 actions per call. */
    static void warm(PdpAuthorizer shim, Workload workload) {
        for (int start = 0; start < workload.resources; start += 100) {
            List<Action> batch = new java.util.ArrayList<>();
            for (int r = start; r < Math.min(workload.resources, start + 100); r++) {
                batch.add(Workload.readOf(r));
            }
            shim.authorize(workload.context, batch);
        }
        int size = shim.decider().cache().size();
        if (size < workload.resources) {
            throw new IllegalStateException("warm-up cached " + size + " of " + workload.resources + " decisions");
        }
    }

    @Benchmark
    public void baselineConcurrentHashMapGet(Baseline state, Cursor cursor, Blackhole bh) {
        bh.consume(state.map.get(state.keys[cursor.advance()]));
    }

    @Benchmark
    public void pdpAuthorizerCached(Pdp state, Cursor cursor, Blackhole bh) {
        bh.consume(state.cached.authorize(state.workload.context, state.workload.samples.get(cursor.advance())));
    }

    @Benchmark
    public void kafkaStandardAuthorizer(Standard state, Cursor cursor, Blackhole bh) {
        bh.consume(state.authorizer.authorize(state.workload.context, state.workload.samples.get(cursor.advance())));
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public void baselineGrpcHealthCheck(GrpcFloor state, Blackhole bh) {
        bh.consume(state.call());
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public void pdpAuthorizerUncached(Pdp state, Cursor cursor, Blackhole bh) {
        bh.consume(state.uncached.authorize(state.workload.context, state.workload.samples.get(cursor.advance())));
    }
}
