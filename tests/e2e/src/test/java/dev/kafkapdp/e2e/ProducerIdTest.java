package dev.kafkapdp.e2e;

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
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.TransactionalIdAuthorizationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Producers that need a producer id. An idempotent producer without {@code IdempotentWrite} on the cluster is
 * let in by Kafka only if {@code authorizeByResourceType(WRITE, TOPIC)} says yes, so this also proves the shim
 * answers that from the PDP; a transactional producer needs Write on its transactional id.
 */
@ExtendWith(SharedCluster.class)
class ProducerIdTest {

    @Test
    void idempotentProducerWritesEachRecordOnceWithOnlyATopicPrefixGrant(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.labs.idempotent-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        List<String> sent = IntStream.range(0, 20).mapToObj(i -> "result-" + i).toList();

        Map<String, Object> idempotent = Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> producer =
                Clients.producer(cluster.clientConfig(LAB_WRITER), idempotent)) {
            Clients.sendAll(producer, topic, sent);
        }
        assertEquals(sent, readCommitted(cluster, topic, sent.size()));
    }

    @Test
    void idempotentProducerOfAPrincipalThatMayWriteNowhereIsRefusedItsProducerId(E2eCluster cluster)
            throws Exception {
        // The reader may describe (and read) the topic, so metadata succeeds; but it has no Write on any topic,
        // so authorizeByResourceType(WRITE, TOPIC) must say no and Kafka refuses the producer id.
        String topic = Clients.unique("e2e.labs.idempotent-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        try (KafkaProducer<String, String> producer = Clients.producer(cluster.clientConfig(LAB_READER),
                Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true))) {
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, "x")).get(30, TimeUnit.SECONDS));
            assertInstanceOf(ClusterAuthorizationException.class, failure.getCause());
        }
    }

    @Test
    void transactionalProducerCommitsUnderItsPrefixAndAbortedRecordsStayHidden(E2eCluster cluster)
            throws Exception {
        String topic = Clients.unique("e2e.labs.transactional-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        try (KafkaProducer<String, String> producer = Clients.producer(cluster.clientConfig(LAB_WRITER),
                transactional(Clients.unique("labs-tx-")))) {
            producer.initTransactions();

            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", "committed-1"));
            producer.send(new ProducerRecord<>(topic, "k", "committed-2"));
            producer.commitTransaction();

            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", "aborted")).get();
            producer.abortTransaction();

            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", "committed-3"));
            producer.commitTransaction();
        }
        assertEquals(List.of("committed-1", "committed-2", "committed-3"), readCommitted(cluster, topic, 3));
    }

    @Test
    void transactionalIdOutsideTheGrantIsRefused(E2eCluster cluster) {
        // The writer outside its `labs-tx-` prefix, and the reader, who has no transactional grant at all.
        Map<TestUser, String> refused = Map.of(
                LAB_WRITER, Clients.unique("billing-tx-"),
                LAB_READER, Clients.unique("labs-tx-"));
        refused.forEach((user, transactionalId) -> {
            try (KafkaProducer<String, String> producer =
                    Clients.producer(cluster.clientConfig(user), transactional(transactionalId))) {
                assertThrows(TransactionalIdAuthorizationException.class, producer::initTransactions,
                        user + " must not use transactional id " + transactionalId);
            }
        });
    }

    private static Map<String, Object> transactional(String transactionalId) {
        return Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 30_000);
    }

    /** Reads as the lab reader with {@code read_committed}, so aborted or dangling records would show up missing. */
    private static List<String> readCommitted(E2eCluster cluster, String topic, int expected) {
        Map<String, Object> readCommitted = Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (KafkaConsumer<String, String> consumer = Clients.consumer(cluster.clientConfig(LAB_READER),
                Clients.unique("labs-readers."), readCommitted)) {
            List<String> values = Clients.readValues(consumer, topic, expected, Clients.OPERATION_TIMEOUT);
            // One more short poll: a duplicate or a leaked aborted record would arrive here.
            consumer.poll(java.time.Duration.ofMillis(500)).forEach(record -> values.add(record.value()));
            return values;
        }
    }
}
