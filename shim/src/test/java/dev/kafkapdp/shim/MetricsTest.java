package dev.kafkapdp.shim;

import static dev.kafkapdp.shim.TestContexts.await;
import static dev.kafkapdp.shim.TestContexts.ctx;
import static dev.kafkapdp.shim.TestContexts.topics;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;

import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.Metrics;
import org.apache.kafka.common.metrics.internals.PluginMetricsImpl;
import org.junit.jupiter.api.Test;

/** The shim's metrics as Kafka's plug-in metrics publish them. */
class MetricsTest {

    private static Object value(Metrics metrics, String name, String... tags) {
        for (Map.Entry<MetricName, KafkaMetric> entry : metrics.metrics().entrySet()) {
            MetricName metricName = entry.getKey();
            boolean tagsMatch = true;
            for (int i = 0; i < tags.length; i += 2) {
                tagsMatch &= tags[i + 1].equals(metricName.tags().get(tags[i]));
            }
            if (metricName.name().equals(name) && tagsMatch) {
                return entry.getValue().metricValue();
            }
        }
        throw new AssertionError("no metric " + name + " " + String.join(",", tags) + " in " + metrics.metrics()
            .keySet());
    }

    @Test
    void decisionsCacheLatencyFailuresAndVersionArePublished() throws Exception {
        Metrics metrics = new Metrics();
        PdpAuthorizer authorizer = new PdpAuthorizer();
        try (FakePdp pdp = new FakePdp()) {
            authorizer.withPluginMetrics(new PluginMetricsImpl(metrics,
                Map.of("config", "authorizer.class.name", "class", "PdpAuthorizer")));
            authorizer.configure(Map.of(PdpConfig.ENDPOINTS_CONFIG, pdp.endpoint(),
                PdpConfig.DEADLINE_MS_CONFIG, "100"));
            await("version", Duration.ofSeconds(10), () -> authorizer.decider().policy().known());

            authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a", "secret"));
            authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a"));
            pdp.delayMs = 500;
            authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-slow"));

            assertEquals(2.0, value(metrics, "decisions-total", "outcome", "allowed"));
            assertEquals(2.0, value(metrics, "decisions-total", "outcome", "denied"));
            assertEquals(1.0, value(metrics, "cache-hits-total"));
            assertEquals(3.0, value(metrics, "cache-misses-total"));
            assertEquals(0.25, (Double) value(metrics, "cache-hit-ratio"), 1e-9);
            assertEquals(2.0, value(metrics, "cache-size"));
            assertEquals(2.0, value(metrics, "pdp-requests-total"));
            assertTrue((Double) value(metrics, "pdp-request-latency-max-ms") >= 100.0, "the slow call took 100 ms");
            assertEquals(1.0, value(metrics, "fail-closed-total", "reason", "deadline_exceeded"));
            assertEquals(0.0, value(metrics, "fail-closed-total", "reason", "unavailable"));
            assertEquals("v1", value(metrics, "policy-version"));
            assertEquals(42.0, value(metrics, "policy-version-activated-at-ms"));
            assertEquals(1.0, value(metrics, "policy-stream-connected"));
            assertEquals("PdpAuthorizer", metrics.metrics().keySet().stream()
                .filter(m -> m.name().equals("policy-version")).findFirst().orElseThrow().tags().get("class"));
        } finally {
            authorizer.close();
        }
        assertTrue(metrics.metrics().keySet().stream().noneMatch(m -> m.name().equals("policy-version")),
            "close removes the metrics");
        metrics.close();
    }
}
