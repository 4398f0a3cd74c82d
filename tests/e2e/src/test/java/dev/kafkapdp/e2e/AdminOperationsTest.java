package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.AUDITOR;
import static dev.kafkapdp.e2e.harness.E2eCluster.BILLING;
import static dev.kafkapdp.e2e.harness.E2eCluster.PLATFORM_ADMIN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.SharedCluster;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Topic creation and configuration: allowed for the platform admin role, denied to the auditor. */
@ExtendWith(SharedCluster.class)
class AdminOperationsTest {

    private static final String RETENTION = "retention.ms";

    @Test
    void platformAdminCreatesTopicsAndAuditorCannot(E2eCluster cluster) throws Exception {
        String allowed = Clients.unique("e2e.admin.created-");
        String refused = Clients.unique("e2e.admin.refused-");

        try (Admin admin = cluster.admin(PLATFORM_ADMIN)) {
            admin.createTopics(List.of(new NewTopic(allowed, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        try (Admin auditor = cluster.admin(AUDITOR)) {
            ExecutionException failure = assertThrows(ExecutionException.class, () -> auditor
                    .createTopics(List.of(new NewTopic(refused, 1, (short) 1))).all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, failure.getCause());
        }

        try (Admin superAdmin = cluster.superAdmin()) {
            assertTrue(Clients.topicExists(superAdmin, allowed), allowed + " must exist");
            assertFalse(Clients.topicExists(superAdmin, refused), refused + " must not exist");
        }
    }

    @Test
    void platformAdminAltersTopicConfigAuditorOnlyReadsItOthersSeeNothing(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.admin.config-");
        try (Admin superAdmin = cluster.superAdmin()) {
            Clients.createTopics(superAdmin, topic);
        }
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);

        try (Admin admin = cluster.admin(PLATFORM_ADMIN)) {
            setRetention(admin, resource, "3600000");
        }
        try (Admin auditor = cluster.admin(AUDITOR)) {
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> setRetention(auditor, resource, "60000"));
            assertInstanceOf(TopicAuthorizationException.class, failure.getCause());
            // DescribeConfigs is the auditor's one grant, and it sees the admin's change, not its own attempt.
            assertEquals("3600000", retention(auditor, resource));
        }
        try (Admin billing = cluster.admin(BILLING)) {
            ExecutionException failure = assertThrows(ExecutionException.class, () -> retention(billing, resource));
            assertInstanceOf(TopicAuthorizationException.class, failure.getCause());
        }
        try (Admin superAdmin = cluster.superAdmin()) {
            assertEquals("3600000", retention(superAdmin, resource));
        }
    }

    private static void setRetention(Admin admin, ConfigResource resource, String value) throws Exception {
        Map<ConfigResource, Collection<AlterConfigOp>> change = Map.of(resource,
                List.of(new AlterConfigOp(new ConfigEntry(RETENTION, value), AlterConfigOp.OpType.SET)));
        admin.incrementalAlterConfigs(change).all().get(30, TimeUnit.SECONDS);
    }

    private static String retention(Admin admin, ConfigResource resource) throws Exception {
        Config config = admin.describeConfigs(List.of(resource)).all().get(30, TimeUnit.SECONDS).get(resource);
        return config.get(RETENTION).value();
    }
}
