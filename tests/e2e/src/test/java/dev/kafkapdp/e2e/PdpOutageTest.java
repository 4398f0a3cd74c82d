package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_WRITER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kafkapdp.e2e.harness.BrokerMetrics;
import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.Poll;
import dev.kafkapdp.e2e.harness.SharedCluster;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Fail closed: with the PDP killed, the broker denies what it cannot ask about, promptly, and keeps serving;
 * once the PDP is back on its port, access returns without touching the broker.
 *
 * <p>"Promptly" is checked structurally rather than with a stopwatch: every client here has a request timeout of
 * a few seconds, so a request thread stuck waiting for the PDP shows up as a client timeout, not as the
 * authorization error the test requires.
 */
@ExtendWith(SharedCluster.class)
class PdpOutageTest {

    /** Client timeouts: several PDP deadlines, far below anything a hung request thread would answer in. */
    private static final int CLIENT_TIMEOUT_MS = 4 * E2eCluster.PDP_DEADLINE_MS + 1_000;
    /** More concurrent requests than the broker has request handler threads (num.io.threads=4). */
    private static final int CONCURRENT_REQUESTS = 12;
    private static final Duration RECOVERY_DEADLINE = Duration.ofSeconds(30);
    private static final Duration CACHE_DROP_DEADLINE = Duration.ofSeconds(10);
    private static final String FAIL_CLOSED = "fail-closed-total";
    /** The single uncached describe, the concurrent ones and the producer's metadata request. */
    private static final int MIN_FAIL_CLOSED_DENIALS = 1 + CONCURRENT_REQUESTS + 1;

    @Test
    void deniesPromptlyWhileThePdpIsDownAndRecoversOnItsOwnAfterARestart(E2eCluster cluster) throws Exception {
        String seenBefore = Clients.unique("e2e.labs.outage-seen-");
        String askedDuring = Clients.unique("e2e.labs.outage-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, seenBefore, askedDuring);
        }

        try (Admin writer = Admin.create(quick(cluster.clientConfig(LAB_WRITER)));
                BrokerMetrics metrics = BrokerMetrics.connect(cluster.broker())) {
            assertTrue(mayDescribe(writer, seenBefore), "the writer must see its topic while the PDP is up");
            double failClosedBefore = metrics.brokerTotal(FAIL_CLOSED);

            cluster.pdp().kill();
            try {
                assertFalse(cluster.pdp().isAlive());
                // The shim drops its cache when the policy-version stream is lost (shim/README.md), so even a
                // decision it had cached is denied once it notices; noticing a killed peer takes a moment.
                Duration cachedDenied = Poll.until("a decision cached before the outage to be denied",
                        CACHE_DROP_DEADLINE, () -> !mayDescribe(writer, seenBefore));
                System.out.printf("cached ALLOW denied %d ms after the PDP was killed%n", cachedDenied.toMillis());
                deniedWhileDown(cluster, writer, askedDuring);
                assertCounted(metrics, FAIL_CLOSED, Map.of(), failClosedBefore);
            } finally {
                cluster.pdp().restart();
            }

            // The very decision that was denied during the outage comes back: fail-closed denials are not cached.
            Duration recovered = Poll.until("access to return after the PDP restart", RECOVERY_DEADLINE,
                    () -> mayDescribe(writer, askedDuring));
            System.out.printf("access returned %d ms after the PDP restarted%n", recovered.toMillis());
        }
        try (KafkaProducer<String, String> producer = Clients.producer(cluster.clientConfig(LAB_WRITER), Map.of())) {
            Clients.sendAll(producer, askedDuring, List.of("after-outage"));
        }
    }

    @Test
    void deniesWithinTheDeadlineWhileThePdpHangsAndAnswersAgainWhenItResumes(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.labs.frozen-");
        try (Admin admin = cluster.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        try (Admin writer = Admin.create(quick(cluster.clientConfig(LAB_WRITER)));
                BrokerMetrics metrics = BrokerMetrics.connect(cluster.broker())) {
            Map<String, String> deadline = Map.of("reason", "deadline_exceeded");
            double deadlineBefore = metrics.brokerValue(FAIL_CLOSED, deadline);
            // A hung PDP, unlike a dead one, refuses nothing: only the shim's deadline stands between it and the
            // broker's request threads.
            cluster.pdp().freeze();
            try {
                deniedWhileDown(cluster, writer, topic);
                assertCounted(metrics, FAIL_CLOSED, deadline, deadlineBefore);
            } finally {
                cluster.pdp().resume();
            }
            Duration recovered = Poll.until("access to return after the PDP resumed", RECOVERY_DEADLINE,
                    () -> mayDescribe(writer, topic));
            System.out.printf("access returned %d ms after the PDP resumed%n", recovered.toMillis());
        }
    }

    /**
     * Every fail-closed denial is counted (shim metric {@code fail-closed-total}, read over JMX): at least one per
     * uncached request this test made while the PDP could not answer.
     */
    private static void assertCounted(BrokerMetrics metrics, String metric, Map<String, String> tags,
            double before) {
        double counted = (tags.isEmpty() ? metrics.brokerTotal(metric) : metrics.brokerValue(metric, tags)) - before;
        System.out.printf("%s %s grew by %.0f during the outage%n", metric, tags, counted);
        assertTrue(counted >= MIN_FAIL_CLOSED_DENIALS, metric + " " + tags + " grew by " + counted
                + ", expected at least " + MIN_FAIL_CLOSED_DENIALS);
    }

    private static void deniedWhileDown(E2eCluster cluster, Admin writer, String topic) throws Exception {
        long start = System.nanoTime();
        assertFalse(mayDescribe(writer, topic), "an uncached decision must be denied while the PDP is down");
        System.out.printf("uncached request denied in %d ms without an answering PDP (shim deadline %d ms)%n",
                (System.nanoTime() - start) / 1_000_000, E2eCluster.PDP_DEADLINE_MS);

        // Many at once, each on its own connection (the broker handles one request per connection at a time):
        // if denials tied up request threads, some of these would time out instead.
        List<Admin> admins = new ArrayList<>();
        try {
            List<CompletableFuture<Boolean>> concurrent = new ArrayList<>();
            for (int i = 0; i < CONCURRENT_REQUESTS; i++) {
                Admin admin = Admin.create(quick(cluster.clientConfig(LAB_WRITER)));
                admins.add(admin);
                String fresh = Clients.unique("e2e.labs.never-asked-");
                concurrent.add(CompletableFuture.supplyAsync(() -> mayDescribeUnchecked(admin, fresh)));
            }
            for (CompletableFuture<Boolean> answer : concurrent) {
                assertFalse(answer.get(CLIENT_TIMEOUT_MS * 4L, TimeUnit.MILLISECONDS));
            }
        } finally {
            admins.forEach(admin -> admin.close(Duration.ofSeconds(5)));
        }

        // A producer is refused as well, with the authorization error and within its short timeouts.
        Map<String, Object> quickProducer = Map.of(ProducerConfig.MAX_BLOCK_MS_CONFIG, CLIENT_TIMEOUT_MS,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, CLIENT_TIMEOUT_MS,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, CLIENT_TIMEOUT_MS);
        try (KafkaProducer<String, String> producer =
                Clients.producer(quick(cluster.clientConfig(LAB_WRITER)), quickProducer)) {
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, "x")).get(CLIENT_TIMEOUT_MS * 2L,
                            TimeUnit.MILLISECONDS));
            assertInstanceOf(TopicAuthorizationException.class, failure.getCause());
        }

        // The broker itself stays responsive: the super user is answered without the PDP.
        try (Admin superAdmin = Admin.create(quick(cluster.broker().clientConfig(E2eCluster.BROKER,
                dev.kafkapdp.e2e.harness.Listener.INTERNAL)))) {
            assertEquals(1, superAdmin.describeCluster().nodes().get(CLIENT_TIMEOUT_MS, TimeUnit.MILLISECONDS)
                    .size());
            assertTrue(Clients.topicExists(superAdmin, topic));
        }
    }

    /**
     * True when the broker lets the writer describe the topic, false on a topic authorization error; a timeout
     * or any other error fails the test.
     */
    private static boolean mayDescribe(Admin admin, String topic) throws Exception {
        try {
            admin.describeTopics(List.of(topic)).allTopicNames().get(CLIENT_TIMEOUT_MS * 2L, TimeUnit.MILLISECONDS);
            return true;
        } catch (ExecutionException e) {
            assertInstanceOf(TopicAuthorizationException.class, e.getCause(),
                    "expected an authorization error, not a timeout or another failure");
            return false;
        }
    }

    private static boolean mayDescribeUnchecked(Admin admin, String topic) {
        try {
            return mayDescribe(admin, topic);
        } catch (Exception e) {
            throw new AssertionError("describing " + topic + " failed", e);
        }
    }

    private static Map<String, Object> quick(Map<String, Object> config) {
        Map<String, Object> quick = new HashMap<>(config);
        quick.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, CLIENT_TIMEOUT_MS);
        quick.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, CLIENT_TIMEOUT_MS);
        quick.put(CommonClientConfigs.RETRIES_CONFIG, 0);
        return quick;
    }
}
