package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.SECURE_PIPELINE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.Listener;
import dev.kafkapdp.e2e.harness.SharedCluster;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.SslAuthenticationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Clients over TLS (the SASL_SSL listener, with a certificate made for this run and verified by hostname). The
 * policy grants the pipeline only when {@code context.security_protocol == "SASL_SSL"}, so this also proves
 * the shim hands the listener's protocol to the PDP.
 */
@ExtendWith(SharedCluster.class)
class SaslSslListenerTest {

    @Test
    void tlsOnlyPipelineRoundTripsOverSaslSslAndIsDeniedOverPlaintext(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.secure.vitals-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        List<String> sent = List.of("bp-120-80", "hr-64");

        Map<String, Object> overTls = cluster.clientConfig(SECURE_PIPELINE, Listener.SECURE);
        try (KafkaProducer<String, String> producer = Clients.producer(overTls, Map.of())) {
            Clients.sendAll(producer, topic, sent);
        }
        try (KafkaConsumer<String, String> consumer =
                Clients.consumer(overTls, Clients.unique("secure-readers."), Map.of())) {
            assertEquals(sent, Clients.readValues(consumer, topic, sent.size(), Clients.OPERATION_TIMEOUT));
        }

        // It is TLS for real: a client that does not trust this run's certificate cannot even connect.
        Map<String, Object> untrusting = new HashMap<>(overTls);
        untrusting.keySet().removeIf(key -> key.startsWith("ssl.truststore."));
        try (Admin admin = Admin.create(untrusting)) {
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> admin.describeCluster().nodes().get(30, TimeUnit.SECONDS));
            assertInstanceOf(SslAuthenticationException.class, failure.getCause());
        }

        Map<String, Object> plaintext = cluster.clientConfig(SECURE_PIPELINE, Listener.CLIENT);
        try (KafkaProducer<String, String> producer = Clients.producer(plaintext, Map.of())) {
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, "leak")).get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, failure.getCause());
        }
    }
}
