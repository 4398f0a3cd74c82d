package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.RELOAD_PROBE;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.Poll;
import dev.kafkapdp.e2e.harness.SharedCluster;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A policy change in the PDP's directory reaches the running broker within a second, in both directions: a new
 * grant is honoured and a removed one is enforced, although the shim had cached the earlier decisions.
 */
@ExtendWith(SharedCluster.class)
class PolicyReloadTest {

    /** The promise under test: one second from the file landing to the broker deciding differently. */
    private static final Duration PROPAGATION_DEADLINE = Duration.ofSeconds(1);

    @Test
    void grantWrittenToThePolicyDirIsEnforcedWithinASecondAndItsRemovalToo(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.reload.");
        String file = "reload-" + topic.substring("e2e.reload.".length()) + ".cedar";
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        try (Admin probe = Admin.create(quick(cluster.clientConfig(RELOAD_PROBE)))) {
            // Denied, and (when cacheable) now in the shim's cache as a DENY.
            assertFalse(mayDescribe(probe, topic), RELOAD_PROBE + " must start without access to " + topic);
            assertFalse(mayDescribe(probe, topic), RELOAD_PROBE + " must start without access to " + topic);

            try {
                cluster.policies().write(file, grant(topic));
                Duration granted = Poll.until("the new grant to be enforced", PROPAGATION_DEADLINE,
                        () -> mayDescribe(probe, topic));
                System.out.printf("policy grant enforced %d ms after the file was written%n", granted.toMillis());
                assertWithinDeadline(granted, "grant");

                // The grant is Write, not only Describe: the probe really produces now.
                try (KafkaProducer<String, String> producer =
                        Clients.producer(cluster.clientConfig(RELOAD_PROBE), Map.of())) {
                    Clients.sendAll(producer, topic, List.of("after-reload"));
                }
                assertTrue(mayDescribe(probe, topic));
            } finally {
                cluster.policies().delete(file);
            }
            Duration revoked = Poll.until("the removed grant to be enforced", PROPAGATION_DEADLINE,
                    () -> !mayDescribe(probe, topic));
            System.out.printf("policy removal enforced %d ms after the file was deleted%n", revoked.toMillis());
            assertWithinDeadline(revoked, "removal");
        }
    }

    /** A probe that said yes only after the deadline is still too late. */
    private static void assertWithinDeadline(Duration took, String change) {
        assertTrue(took.compareTo(PROPAGATION_DEADLINE) <= 0,
                "the policy " + change + " took " + took.toMillis() + " ms to be enforced");
    }

    private static String grant(String topic) {
        return "// Written by PolicyReloadTest while the PDP runs; deleted again by the test.\n"
                + "@id(\"e2e-reload-" + topic + "\")\n"
                + "permit (\n"
                + "  principal == Kafka::Principal::\"" + RELOAD_PROBE.principal() + "\",\n"
                + "  action in Kafka::Action::\"Write\",\n"
                + "  resource == Kafka::Topic::\"" + topic + "\"\n"
                + ");\n";
    }

    /**
     * Whether the probe may describe the topic: true when the broker answers, false on a topic authorization
     * error; anything else (a timeout, say) fails the test rather than counting as either.
     */
    private static boolean mayDescribe(Admin probe, String topic) throws Exception {
        try {
            probe.describeTopics(List.of(topic)).allTopicNames().get(5, TimeUnit.SECONDS);
            return true;
        } catch (ExecutionException e) {
            assertInstanceOf(TopicAuthorizationException.class, e.getCause(), "unexpected failure");
            return false;
        }
    }

    private static Map<String, Object> quick(Map<String, Object> config) {
        Map<String, Object> quick = new java.util.HashMap<>(config);
        quick.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, 4_000);
        quick.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, 5_000);
        return quick;
    }
}
