package dev.kafkapdp.shim;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.metrics.Gauge;
import org.apache.kafka.common.metrics.Measurable;
import org.apache.kafka.common.metrics.PluginMetrics;
import org.apache.kafka.common.metrics.Sensor;
import org.apache.kafka.common.metrics.stats.Avg;
import org.apache.kafka.common.metrics.stats.Max;

/**
 * The shim's counters, kept as {@link LongAdder}s so that request-handler threads never contend on them, and
 * published through Kafka's plug-in metrics (KIP-877) once the broker hands them over.
 *
 * <p>Kafka files them under the {@code plugins} group with the tags {@code config=authorizer.class.name} and
 * {@code class=PdpAuthorizer}, so they appear in JMX as
 * {@code kafka.server:type=plugins,config=authorizer.class.name,class=PdpAuthorizer,...}.
 */
final class ShimMetrics {

    /** Why a request was denied without a decision from a policy. Each reason is its own counter. */
    enum FailReason {
        /** No PDP replica could be reached. */
        UNAVAILABLE("unavailable"),
        /** The PDP did not answer within {@code kafka.pdp.deadline.ms}. */
        DEADLINE_EXCEEDED("deadline_exceeded"),
        /** The PDP answered with an error status. */
        RPC_ERROR("rpc_error"),
        /** The PDP's answer did not fit the request (wrong number of results, say). */
        BAD_RESPONSE("bad_response"),
        /** The PDP's answer had an unspecified or unknown decision. */
        UNKNOWN_DECISION("unknown_decision"),
        /** Kafka asked about ANY, ALL or UNKNOWN, which no policy can name. */
        UNSUPPORTED_ACTION("unsupported_action"),
        /** The shim itself failed (not configured, say). */
        INTERNAL_ERROR("internal_error");

        final String tag;

        FailReason(String tag) {
            this.tag = tag;
        }
    }

    // Cache hits are tallied per cached answer for the audit trail (see AuditReporter) and added here when the
    // tallies are taken; every read below takes them first, so the figures are current when read.
    final LongAdder hitsAllowed = new LongAdder();
    final LongAdder hitsDenied = new LongAdder();
    /** Cache hits sent to the PDP because the audit buffer was full. */
    final LongAdder auditBufferFullMisses = new LongAdder();
    /** Cache hits answered without an audit record because the buffer was full and denying was turned off. */
    final LongAdder auditUnrecorded = new LongAdder();
    final LongAdder auditRecordsReported = new LongAdder();
    final LongAdder auditReportFailures = new LongAdder();
    /** Takes the cache-hit tallies into the hit counters; set once by the owner. */
    private volatile Runnable collectHits = () -> { };
    /** Decisions not answered from the cache: by the PDP, for super users, or failed closed. */
    final LongAdder otherAllowed = new LongAdder();
    final LongAdder otherDenied = new LongAdder();
    final LongAdder cacheMisses = new LongAdder();
    final LongAdder pdpRequests = new LongAdder();
    final LongAdder pdpLatencyNanos = new LongAdder();
    final LongAdder policyVersionChanges = new LongAdder();
    private final Map<FailReason, LongAdder> failClosed = new EnumMap<>(FailReason.class);
    private volatile Sensor latencySensor;
    private final List<MetricName> registered = new ArrayList<>();
    private PluginMetrics pluginMetrics;

    ShimMetrics() {
        for (FailReason reason : FailReason.values()) {
            failClosed.put(reason, new LongAdder());
        }
    }

    void failClosed(FailReason reason, int actions) {
        failClosed.get(reason).add(actions);
    }

    long failClosedCount(FailReason reason) {
        return failClosed.get(reason).sum();
    }

    void recordPdpRoundTrip(long nanos) {
        pdpRequests.increment();
        pdpLatencyNanos.add(nanos);
        Sensor sensor = latencySensor;
        if (sensor != null) {
            sensor.record(nanos / 1_000_000.0);
        }
    }

    void collectHitsWith(Runnable collect) {
        collectHits = collect;
    }

    long allowed() {
        collectHits.run();
        return hitsAllowed.sum() + otherAllowed.sum();
    }

    long denied() {
        collectHits.run();
        return hitsDenied.sum() + otherDenied.sum();
    }

    long cacheHits() {
        collectHits.run();
        return hitsAllowed.sum() + hitsDenied.sum();
    }

    /** Cache hits over all lookups since start, 0 before the first lookup. */
    double hitRatio() {
        long hits = cacheHits();
        long total = hits + cacheMisses.sum();
        return total == 0 ? 0.0 : (double) hits / total;
    }

    /** Publishes every counter; called once, when Kafka hands over the plug-in metrics. */
    synchronized void register(PluginMetrics metrics, DecisionCache cache, AuditReporter audit,
                               Supplier<PolicyState> policy) {
        pluginMetrics = metrics;
        add(metrics, "decisions-total", "Decisions returned to Kafka", tags("outcome", "allowed"),
            (Measurable) (c, now) -> allowed());
        add(metrics, "decisions-total", "Decisions returned to Kafka", tags("outcome", "denied"),
            (Measurable) (c, now) -> denied());
        measure(metrics, "cache-hits-total", "Actions answered from the local cache", (c, now) -> cacheHits());
        count(metrics, "cache-misses-total", "Actions sent to the PDP", tags(), cacheMisses);
        measure(metrics, "cache-hit-ratio", "Cache hits over all lookups since start", (c, now) -> hitRatio());
        measure(metrics, "cache-size", "Decisions held in the cache", (c, now) -> cache.size());
        measure(metrics, "cache-evictions-total", "Decisions evicted to keep the bound", (c, now) -> cache.evictions());
        count(metrics, "pdp-requests-total", "Round trips to the PDP", tags(), pdpRequests);
        for (FailReason reason : FailReason.values()) {
            count(metrics, "fail-closed-total", "Actions denied without a policy decision, by reason",
                tags("reason", reason.tag), failClosed.get(reason));
        }
        count(metrics, "policy-version-changes-total", "Policy versions reported by the PDP",
            tags(), policyVersionChanges);
        add(metrics, "policy-version", "Content hash of the active policy set (empty when unknown)", tags(),
            (Gauge<String>) (c, now) -> policy.get().version());
        measure(metrics, "policy-version-activated-at-ms", "When the active policy version became active (unix ms)",
            (c, now) -> policy.get().activatedAtMs());
        measure(metrics, "policy-stream-connected", "1 while the policy-version stream is up",
            (c, now) -> policy.get().known() ? 1 : 0);

        measure(metrics, "audit-buffer-records", "Audit records of cache answers held for the PDP",
            (c, now) -> audit.buffered());
        measure(metrics, "audit-buffer-max-records", "Bound of the audit buffer", (c, now) -> audit.maxRecords());
        count(metrics, "audit-records-reported-total", "Audit records of cache answers taken by the PDP", tags(),
            auditRecordsReported);
        count(metrics, "audit-report-failures-total", "Audit reports the PDP did not take (sent again)", tags(),
            auditReportFailures);
        count(metrics, "audit-buffer-full-misses-total", "Cache hits sent to the PDP because the audit buffer was full",
            tags(), auditBufferFullMisses);
        count(metrics, "audit-unrecorded-total", "Cache hits answered without an audit record (buffer full)",
            tags(), auditUnrecorded);

        Sensor sensor = metrics.addSensor("pdp-request-latency");
        sensor.add(metrics.metricName("pdp-request-latency-avg-ms", "Average PDP round trip", tags()), new Avg());
        sensor.add(metrics.metricName("pdp-request-latency-max-ms", "Slowest PDP round trip", tags()), new Max());
        latencySensor = sensor;
    }

    /** Removes what {@link #register} published. */
    synchronized void unregister() {
        if (pluginMetrics == null) {
            return;
        }
        latencySensor = null;
        pluginMetrics.removeSensor("pdp-request-latency");
        registered.forEach(pluginMetrics::removeMetric);
        registered.clear();
        pluginMetrics = null;
    }

    private void count(PluginMetrics metrics, String name, String doc, LinkedHashMap<String, String> tags,
                       LongAdder adder) {
        add(metrics, name, doc, tags, (Measurable) (c, now) -> adder.sum());
    }

    private void measure(PluginMetrics metrics, String name, String doc, Measurable value) {
        add(metrics, name, doc, tags(), value);
    }

    private void add(PluginMetrics metrics, String name, String doc, LinkedHashMap<String, String> tags,
                     org.apache.kafka.common.metrics.MetricValueProvider<?> value) {
        MetricName metricName = metrics.metricName(name, doc, tags);
        metrics.addMetric(metricName, value);
        registered.add(metricName);
    }

    private static LinkedHashMap<String, String> tags(String... keyValues) {
        LinkedHashMap<String, String> tags = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            tags.put(keyValues[i], keyValues[i + 1]);
        }
        return tags;
    }
}
