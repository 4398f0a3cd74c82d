package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.BILLING;
import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_READER;
import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_WRITER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.SharedCluster;
import dev.kafkapdp.e2e.harness.TestUser;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The data plane: who may produce to and consume from a topic, decided by the PDP through the shim. */
@ExtendWith(SharedCluster.class)
class ProduceConsumeTest {

    @Test
    void labWriterProducesAndLabReaderConsumesInItsLinkedGroup(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.labs.results-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        List<String> sent = List.of("panel-1", "panel-2", "panel-3");

        try (KafkaProducer<String, String> producer = Clients.producer(cluster.clientConfig(LAB_WRITER), Map.of())) {
            Clients.sendAll(producer, topic, sent);
        }
        // The group prefix `labs-readers.` is granted through a template link in links.json.
        try (KafkaConsumer<String, String> consumer = Clients.consumer(cluster.clientConfig(LAB_READER),
                Clients.unique("labs-readers."), Map.of())) {
            assertEquals(sent, Clients.readValues(consumer, topic, sent.size(), Clients.OPERATION_TIMEOUT));
            // Committing offsets is another Read on the group and the topic.
            consumer.commitSync(java.time.Duration.ofSeconds(30));
        }
    }

    @Test
    void producerWithoutWriteGrantGetsTopicAuthorizationException(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.labs.results-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        // The reader may read the topic but not write it; billing-svc is bound to nothing at all. Idempotence is
        // off so that the Write on the topic is what is asked: an idempotent producer of a principal that may
        // write nowhere is refused its producer id first (see ProducerIdTest).
        Map<String, Object> plain = Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        for (TestUser user : List.of(LAB_READER, BILLING)) {
            try (KafkaProducer<String, String> producer = Clients.producer(cluster.clientConfig(user), plain)) {
                ExecutionException failure = assertThrows(ExecutionException.class,
                        () -> producer.send(new ProducerRecord<>(topic, "x")).get(30, TimeUnit.SECONDS),
                        user + " must not write " + topic);
                TopicAuthorizationException denied =
                        assertInstanceOf(TopicAuthorizationException.class, failure.getCause(), user.toString());
                assertEquals(Set.of(topic), denied.unauthorizedTopics(), user.toString());
            }
        }
        try (Admin admin = cluster.superAdmin()) {
            long records = admin.listOffsets(Map.of(new org.apache.kafka.common.TopicPartition(topic, 0),
                    org.apache.kafka.clients.admin.OffsetSpec.latest())).all().get(30, TimeUnit.SECONDS)
                    .values().iterator().next().offset();
            assertEquals(0, records, "nothing may have been written to " + topic);
        }
    }

    @Test
    void consumerInGroupOutsideItsGrantGetsGroupAuthorizationException(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.labs.results-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        String forbiddenGroup = Clients.unique("billing-consumers.");
        try (KafkaConsumer<String, String> consumer =
                Clients.consumer(cluster.clientConfig(LAB_READER), forbiddenGroup, Map.of())) {
            GroupAuthorizationException denied = assertThrows(GroupAuthorizationException.class,
                    () -> Clients.readValues(consumer, topic, 1, Clients.OPERATION_TIMEOUT));
            assertEquals(forbiddenGroup, denied.groupId());
        }
    }
}
