package dev.kafkapdp.e2e.harness;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Small helpers around the real Kafka clients the tests drive. */
public final class Clients {

    /** Long enough for a cold broker on a busy 2-core machine, short enough that a hang is a failure. */
    public static final Duration OPERATION_TIMEOUT = Duration.ofSeconds(30);

    private Clients() {
    }

    /** A string producer; {@code extra} overrides the defaults (acks=all, idempotence on, as in Kafka 4). */
    public static KafkaProducer<String, String> producer(Map<String, Object> base, Map<String, Object> extra) {
        Map<String, Object> config = new HashMap<>(base);
        config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        config.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        config.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 20_000);
        config.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        config.putAll(extra);
        return new KafkaProducer<>(config);
    }

    /** A string consumer in {@code group}, reading from the earliest offset; {@code extra} overrides. */
    public static KafkaConsumer<String, String> consumer(Map<String, Object> base, String group,
            Map<String, Object> extra) {
        Map<String, Object> config = new HashMap<>(base);
        config.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        config.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        config.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        config.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        config.putAll(extra);
        return new KafkaConsumer<>(config);
    }

    /** Sends {@code values} to {@code topic} and waits for every acknowledgement. */
    public static void sendAll(KafkaProducer<String, String> producer, String topic, List<String> values)
            throws Exception {
        List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
        for (String value : values) {
            acks.add(producer.send(new ProducerRecord<>(topic, value, value)));
        }
        for (java.util.concurrent.Future<?> ack : acks) {
            ack.get(OPERATION_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
    }

    /** Subscribes to {@code topic} and polls until {@code count} records arrived or the deadline passed. */
    public static List<String> readValues(KafkaConsumer<String, String> consumer, String topic, int count,
            Duration deadline) {
        consumer.subscribe(List.of(topic));
        List<String> values = new ArrayList<>();
        long end = System.nanoTime() + deadline.toNanos();
        while (values.size() < count && System.nanoTime() < end) {
            for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                values.add(record.value());
            }
        }
        return values;
    }

    /** Creates topics as the super user, so that a test's setup never depends on the policy under test. */
    public static void createTopics(Admin superAdmin, String... topics) throws Exception {
        List<NewTopic> newTopics = new ArrayList<>();
        for (String topic : topics) {
            newTopics.add(new NewTopic(topic, 1, (short) 1));
        }
        superAdmin.createTopics(newTopics).all().get(OPERATION_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }

    /** Whether {@code topic} exists, asked as the super user. */
    public static boolean topicExists(Admin superAdmin, String topic) throws Exception {
        Set<String> names = superAdmin.listTopics().names().get(OPERATION_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        return names.contains(topic);
    }

    /** The cause of a failed future, or the exception itself when it is not a wrapper. */
    public static Throwable unwrap(Throwable thrown) {
        Throwable cause = thrown;
        while ((cause instanceof ExecutionException || cause instanceof java.util.concurrent.CompletionException)
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause;
    }

    /** A topic or group name that no earlier test, nor an earlier run, has used. */
    public static String unique(String prefix) {
        return prefix + java.util.UUID.randomUUID().toString().substring(0, 8);
    }
}
