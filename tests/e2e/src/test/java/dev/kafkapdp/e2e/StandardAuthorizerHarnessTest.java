package dev.kafkapdp.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kafkapdp.e2e.harness.BrokerProcess;
import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.Listener;
import dev.kafkapdp.e2e.harness.TestUser;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * The harness on its own, with Kafka's {@code StandardAuthorizer} and ACLs instead of the shim: the same broker,
 * listeners, users and clients. When the shim suite fails and this passes, the fault is not in the harness.
 */
class StandardAuthorizerHarnessTest {

    private static final TestUser BROKER = TestUser.named("broker");
    private static final TestUser WRITER = TestUser.named("acl-writer");
    private static final TestUser READER = TestUser.named("acl-reader");
    private static final TestUser STRANGER = TestUser.named("acl-stranger");

    private static BrokerProcess broker;

    /** Prints this class's broker log under a failed test; the shared cluster's extension does not know it. */
    @RegisterExtension
    static final TestWatcher LOGS_ON_FAILURE = new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            if (broker != null) {
                System.out.println("===== " + context.getDisplayName() + " failed; broker log follows =====");
                System.out.println(broker.logTail(80));
            }
        }
    };

    @BeforeAll
    static void startBroker() throws Exception {
        broker = BrokerProcess.start(new BrokerProcess.Settings("standard-authorizer-broker",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer", Map.of(), List.of(), BROKER,
                List.of(WRITER, READER, STRANGER)));
        try (Admin admin = broker.superAdmin()) {
            admin.createAcls(List.of(
                    allow(WRITER, ResourceType.TOPIC, "acl.", AclOperation.WRITE),
                    allow(WRITER, ResourceType.TOPIC, "acl.", AclOperation.DESCRIBE),
                    allow(READER, ResourceType.TOPIC, "acl.", AclOperation.READ),
                    allow(READER, ResourceType.GROUP, "acl-readers.", AclOperation.READ)))
                    .all().get(30, TimeUnit.SECONDS);
        }
    }

    @AfterAll
    static void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    void aclGrantedProducerAndConsumerRoundTripOverBothClientListeners() throws Exception {
        for (Listener listener : List.of(Listener.CLIENT, Listener.SECURE)) {
            String topic = Clients.unique("acl.round-trip-");
            try (Admin admin = broker.superAdmin()) {
                Clients.createTopics(admin, topic);
            }
            try (KafkaProducer<String, String> producer =
                    Clients.producer(broker.clientConfig(WRITER, listener), Map.of())) {
                Clients.sendAll(producer, topic, List.of("a", "b", "c"));
            }
            try (KafkaConsumer<String, String> consumer = Clients.consumer(broker.clientConfig(READER, listener),
                    Clients.unique("acl-readers."), Map.of())) {
                assertEquals(List.of("a", "b", "c"),
                        Clients.readValues(consumer, topic, 3, Clients.OPERATION_TIMEOUT), "over " + listener);
            }
        }
    }

    @Test
    void producerWithoutAclIsRefusedAndConsumerOutsideItsGroupIsRefused() throws Exception {
        String topic = Clients.unique("acl.denied-");
        try (Admin admin = broker.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        try (KafkaProducer<String, String> producer =
                Clients.producer(broker.clientConfig(STRANGER, Listener.CLIENT), Map.of())) {
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, "x")).get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, failure.getCause());
        }
        try (KafkaConsumer<String, String> consumer = Clients.consumer(broker.clientConfig(READER, Listener.CLIENT),
                Clients.unique("other-group."), Map.of())) {
            assertThrows(GroupAuthorizationException.class,
                    () -> Clients.readValues(consumer, topic, 1, Clients.OPERATION_TIMEOUT));
        }
    }

    private static AclBinding allow(TestUser user, ResourceType type, String prefix, AclOperation operation) {
        return new AclBinding(new ResourcePattern(type, prefix, PatternType.PREFIXED),
                new AccessControlEntry(user.principal(), "*", operation, AclPermissionType.ALLOW));
    }
}
