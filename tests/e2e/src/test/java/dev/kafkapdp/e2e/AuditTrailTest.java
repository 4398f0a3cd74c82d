package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.BILLING;
import static dev.kafkapdp.e2e.harness.E2eCluster.BROKER;
import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_READER;
import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_WRITER;
import static dev.kafkapdp.e2e.harness.E2eCluster.RELOAD_PROBE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kafkapdp.e2e.harness.BrokerProcess;
import dev.kafkapdp.e2e.harness.ChildProcess;
import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.E2eEnvironment;
import dev.kafkapdp.e2e.harness.Listener;
import dev.kafkapdp.e2e.harness.PdpProcess;
import dev.kafkapdp.e2e.harness.PolicyDir;
import dev.kafkapdp.e2e.harness.Poll;
import dev.kafkapdp.e2e.harness.SharedCluster;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The audit trail beyond one machine: a PDP with {@code --audit-dir} records every decision of its own broker in
 * the local chained log and ships each record, unchanged, to a topic on the shared broker.
 *
 * <p>Two brokers: decisions come from this class's own broker, whose shim asks this class's PDP; the audit topic
 * lives on the shared broker, written by the sink as {@code User:reload-probe} over the SASL_SSL listener (TLS,
 * the broker's certificate verified), whom a policy file in the shared PDP's directory grants Write on that one
 * topic. Removing that file is the outage: the sink is then really refused by a real broker, and the local log is
 * its spool.
 */
@ExtendWith(SharedCluster.class)
class AuditTrailTest {

    private static final Duration ARRIVAL_DEADLINE = Duration.ofSeconds(90);
    /** The one segment the PDP of this class writes (64 MiB and a day before it rotates). */
    private static final String SEGMENT = "seg-0000000001.jsonl";
    /** The record a checkpoint line vouches for (the first {@code seq} of the line, in its data). */
    private static final Pattern CHECKPOINT_SEQ = Pattern.compile("\"seq\":(\\d+)");
    private static final Pattern SEQUENCE = Pattern.compile("\"sequence\":\"(\\d{20})\"");
    /** The record number in a line of {@code audit subscribe} (one JSON object; {@code data} has no seq). */
    private static final Pattern SUBSCRIBED_SEQ = Pattern.compile("\"seq\":(\\d+),\"source\":");
    /** The fold count of a record the shim answered from its cache. */
    private static final Pattern SHIM_CACHE_COUNT = Pattern.compile("\"by\":\"shim-cache\",\"count\":(\\d+)");

    private static Path work;
    private static Path auditDir;
    private static Path publicKey;
    private static String auditTopic;
    private static String grantFile;
    private static PolicyDir ownPolicies;
    private static PdpProcess pdp;
    private static BrokerProcess broker;

    @BeforeAll
    static void start(E2eCluster shared) throws Exception {
        work = Files.createTempDirectory("kafka-pdp-e2e-audit-");
        auditDir = work.resolve("audit");
        Path key = work.resolve("audit.key");
        publicKey = work.resolve("audit.key.pub");
        cli("audit-keygen", "audit", "keygen", "--out", key.toString());

        auditTopic = Clients.unique("e2e.audit.");
        grantFile = "audit-sink-" + auditTopic.substring("e2e.audit.".length()) + ".cedar";
        try (Admin admin = shared.superAdmin()) {
            Clients.createTopics(admin, auditTopic);
        }
        shared.policies().write(grantFile, sinkGrant(auditTopic));

        ownPolicies = PolicyDir.create();
        pdp = PdpProcess.start(E2eEnvironment.pdpBinary(), ownPolicies.root(), "127.0.0.1:0", "audit-pdp",
                List.of("--audit-dir", auditDir.toString(), "--audit-key", key.toString(),
                        // Frequent signed checkpoints, so that cutting records off the end is caught.
                        "--audit-checkpoint-every", "5",
                        "--audit-kafka-bootstrap", shared.broker().bootstrap(Listener.SECURE),
                        "--audit-kafka-topic", auditTopic,
                        "--audit-kafka-config", sinkConfig(work.resolve("sink.properties"), shared).toString()));
        Map<String, String> shimConfig = Map.of(
                "kafka.pdp.endpoints", pdp.endpoint(),
                "kafka.pdp.deadline.ms", Integer.toString(E2eCluster.PDP_DEADLINE_MS),
                "kafka.pdp.start.timeout.ms", "60000",
                "kafka.pdp.audit.report.interval.ms", "200");
        broker = BrokerProcess.start(new BrokerProcess.Settings("audit-broker", E2eCluster.SHIM_AUTHORIZER,
                shimConfig, List.of(E2eEnvironment.shimJar()), BROKER, List.of(LAB_WRITER, LAB_READER, BILLING)));
    }

    @AfterAll
    static void stop(E2eCluster shared) {
        try {
            if (broker != null) {
                broker.close();
            }
        } finally {
            if (pdp != null) {
                pdp.close();
            }
            if (ownPolicies != null) {
                ownPolicies.close();
            }
            shared.policies().delete(grantFile);
            deleteQuietly(work);
        }
    }

    private static void deleteQuietly(Path root) {
        if (root == null) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            System.out.println("could not delete " + root + ": " + e);
        }
    }

    @Test
    void allowedAndDeniedCallsReachTheLocalLogAndTheTopicUnchangedAndTheLogVerifies(E2eCluster shared)
            throws Exception {
        String topic = Clients.unique("e2e.labs.audited-");
        String deniedGroup = Clients.unique("billing-consumers.");
        Path subscribed = work.resolve(Clients.unique("subscribe-") + ".jsonl");
        ChildProcess subscriber = ChildProcess.start("audit-subscribe", List.of(E2eEnvironment.pdpBinary().toString(),
                "audit", "subscribe", "--server", pdp.endpoint(), "--plaintext", "--from-sequence", "1"), work,
                subscribed, work.resolve("subscribe.err"));
        try {
            runAllowedAndDeniedCalls(topic, deniedGroup);
            long head = localRecords().lastKey();
            Poll.until("the live subscription to reach record " + head, ARRIVAL_DEADLINE,
                    () -> subscribedSequences(subscribed).size() >= head);
            List<Long> seen = subscribedSequences(subscribed).subList(0, (int) head);
            for (int i = 0; i < head; i++) {
                assertEquals(i + 1L, seen.get(i), "the subscription must deliver every record in order");
            }
        } finally {
            subscriber.stop(Duration.ofSeconds(5));
        }

        String decisions = cli("audit-query", "audit", "query", auditDir.toString(), "--json").output();
        assertTrue(hasRecord(decisions, "ALLOW", LAB_WRITER.name(), "Write", topic), "an allowed produce");
        // Kafka refuses these before the produce and the join: at the producer's metadata request and at the
        // consumer's FindCoordinator, both of which ask Describe.
        assertTrue(hasRecord(decisions, "DENY", BILLING.name(), "Describe", topic), "a denied produce");
        assertTrue(hasRecord(decisions, "ALLOW", LAB_READER.name(), "Read", topic), "an allowed fetch");
        assertTrue(hasRecord(decisions, "DENY", LAB_READER.name(), "Describe", deniedGroup), "a denied group");

        TreeMap<Long, String> local = localRecords();
        long head = local.lastKey();
        Map<Long, String> shipped = awaitShipped(shared, head);
        for (long seq = 1; seq <= head; seq++) {
            assertEquals(local.get(seq), shipped.get(seq), "record " + seq + " must arrive unchanged");
        }
        assertEquals(0, cli("audit-verify", "audit", "verify", auditDir.toString(), "--public-key",
                publicKey.toString()).exitCode(), "audit verify must pass");
        assertTrue(!pdp.logTail(Integer.MAX_VALUE).contains(RELOAD_PROBE.password()),
                "the sink's SASL password must never reach the PDP's log");
    }

    @Test
    void fetchesTheShimAnsweredFromItsCacheReachTheTrailFolded() throws Exception {
        String topic = Clients.unique("e2e.labs.cached-");
        try (Admin admin = broker.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        try (KafkaProducer<String, String> producer =
                Clients.producer(broker.clientConfig(LAB_WRITER, Listener.CLIENT), Map.of())) {
            Clients.sendAll(producer, topic, List.of("panel-1"));
        }
        // Every fetch asks Read on the topic; after the first the shim answers from its cache.
        Map<String, Object> reader = broker.clientConfig(LAB_READER, Listener.CLIENT);
        try (KafkaConsumer<String, String> consumer =
                Clients.consumer(reader, Clients.unique("labs-readers."), Map.of())) {
            assertEquals(1, Clients.readValues(consumer, topic, 1, Clients.OPERATION_TIMEOUT).size());
            long until = System.nanoTime() + Duration.ofSeconds(3).toNanos();
            while (System.nanoTime() < until) {
                consumer.poll(Duration.ofMillis(100));
            }
        }

        Poll.until("the shim's cached fetches of " + topic + " in the trail", ARRIVAL_DEADLINE,
                () -> cachedReads(topic).size() >= 1);
        List<String> folded = cachedReads(topic);
        long answered = 0;
        for (String line : folded) {
            Matcher m = SHIM_CACHE_COUNT.matcher(line);
            assertTrue(m.find(), "a shim-cache record carries its count: " + line);
            answered += Long.parseLong(m.group(1));
            assertTrue(line.contains("\"decision\":\"ALLOW\""), line);
            assertTrue(line.contains("\"api\":\"FETCH\""), line);
        }
        assertTrue(answered >= 2, "several fetches were answered from the cache, the trail has " + answered);
        // The topic was created by the broker's own principal, a super user the shim allows without the PDP:
        // Kafka asks Create on the cluster first.
        Poll.until("the super user's Create on the cluster in the trail", ARRIVAL_DEADLINE, () -> cli(
                "audit-query", "audit", "query", auditDir.toString(), "--json").output().lines()
                .anyMatch(line -> line.contains("\"by\":\"shim-super-user\"")
                        && hasRecord(line, "ALLOW", BROKER.name(), "Create", "kafka-cluster")));
        assertEquals(0, cli("audit-verify", "audit", "verify", auditDir.toString(), "--public-key",
                publicKey.toString()).exitCode(), "audit verify must pass");
    }

    @Test
    void verifyPinpointsAnEditedADeletedASwappedAndATruncatedRecordInCopiesOfTheLog() throws Exception {
        runAllowedAndDeniedCalls(Clients.unique("e2e.labs.tamper-"), Clients.unique("billing-consumers."));
        Path pristine = copyLog();
        assertEquals(0, verify(pristine).exitCode(), "the copy of the live log verifies");
        List<String> lines = Files.readAllLines(pristine.resolve(SEGMENT), StandardCharsets.UTF_8);
        int middle = lines.size() / 2;
        long seq = sequence(lines.get(middle));

        List<String> edited = new ArrayList<>(lines);
        edited.set(middle, lines.get(middle).replace("\"schema\":1,", "\"schema\":1,\"x\":0,"));
        assertFinding(tampered(pristine, "edited", edited),
                "edited: record " + seq + " at " + SEGMENT + ":" + (middle + 1) + " ");

        List<String> deleted = new ArrayList<>(lines);
        deleted.remove(middle);
        assertFinding(tampered(pristine, "deleted", deleted), "deleted: record " + seq + " is missing");

        List<String> swapped = new ArrayList<>(lines);
        java.util.Collections.swap(swapped, middle, middle + 1);
        Path reordered = tampered(pristine, "swapped", swapped);
        assertFinding(reordered, "reordered: record " + (seq + 1) + " at " + SEGMENT + ":" + (middle + 1) + " ");
        assertFinding(reordered, "appears before record " + seq + "\n");

        long covered = newestCheckpointCovers(pristine);
        int keep = (int) (covered - 2); // records 1..covered-2 stay: the checkpoint vouches for two more
        Path truncated = tampered(pristine, "truncated", lines.subList(0, keep));
        assertFinding(truncated, "covers record " + covered + " but the log ends at record " + (covered - 2));
    }

    /**
     * A copy of the live log as it stands: checkpoints first, then the segment's complete lines, so that no copied
     * checkpoint vouches for a record the copy lacks.
     */
    private static Path copyLog() throws IOException {
        Path copy = Files.createDirectories(work.resolve(Clients.unique("pristine-")));
        Files.copy(auditDir.resolve("checkpoints.jsonl"), copy.resolve("checkpoints.jsonl"));
        String text = Files.readString(auditDir.resolve(SEGMENT), StandardCharsets.UTF_8);
        Files.writeString(copy.resolve(SEGMENT), text.substring(0, text.lastIndexOf('\n') + 1),
                StandardCharsets.UTF_8);
        return copy;
    }

    /** A copy of {@code pristine} whose segment holds {@code lines}. */
    private static Path tampered(Path pristine, String name, List<String> lines) throws IOException {
        Path copy = Files.createDirectories(work.resolve(Clients.unique(name + "-")));
        Files.copy(pristine.resolve("checkpoints.jsonl"), copy.resolve("checkpoints.jsonl"));
        Files.write(copy.resolve(SEGMENT), lines, StandardCharsets.UTF_8);
        return copy;
    }

    private static long newestCheckpointCovers(Path log) throws IOException {
        List<String> checkpoints = Files.readAllLines(log.resolve("checkpoints.jsonl"), StandardCharsets.UTF_8);
        Matcher m = CHECKPOINT_SEQ.matcher(checkpoints.get(checkpoints.size() - 1));
        assertTrue(m.find(), "a checkpoint names the record it covers");
        return Long.parseLong(m.group(1));
    }

    private static ChildProcess.Result verify(Path log) {
        List<String> command = List.of(E2eEnvironment.pdpBinary().toString(), "audit", "verify", log.toString(),
                "--public-key", publicKey.toString());
        return ChildProcess.run("audit-verify-" + log.getFileName(), command, work, Duration.ofSeconds(60));
    }

    private static void assertFinding(Path log, String expected) {
        ChildProcess.Result result = verify(log);
        assertEquals(1, result.exitCode(), "verify must fail on " + log.getFileName() + ":\n" + result.output());
        assertTrue(result.output().contains(expected), "expected `" + expected + "` in:\n" + result.output());
    }

    /** The shim-cache records of Read on {@code topic} by the lab reader, as JSON lines. */
    private static List<String> cachedReads(String topic) {
        String lines = cli("audit-query", "audit", "query", auditDir.toString(), "--json").output();
        return lines.lines()
                .filter(line -> line.contains("\"by\":\"shim-cache\"") && hasRecord(line, "ALLOW",
                        LAB_READER.name(), "Read", topic))
                .toList();
    }

    @Test
    void recordsWrittenWhileTheSinkIsRefusedArriveOnceItIsAllowedAgain(E2eCluster shared) throws Exception {
        awaitShipped(shared, localRecords().lastKey());
        shared.policies().delete(grantFile);
        String topic = Clients.unique("e2e.labs.outage-");
        long spooled;
        try (Admin sink = Admin.create(shared.clientConfig(RELOAD_PROBE))) {
            Poll.until("the sink's grant to be revoked", ARRIVAL_DEADLINE, () -> !mayDescribe(sink, auditTopic));
            runAllowedAndDeniedCalls(topic, Clients.unique("billing-consumers."));
            spooled = localRecords().lastKey();
            Poll.until("the sink to report a refused delivery", ARRIVAL_DEADLINE,
                    () -> pdp.logTail(400).contains("audit export failed"));
            assertTrue(!readToEnd(shared).containsKey(spooled), "records of the outage must not have arrived");
        } finally {
            shared.policies().write(grantFile, sinkGrant(auditTopic));
        }
        Map<Long, String> local = localRecords();
        Map<Long, String> shipped = awaitShipped(shared, spooled);
        for (long seq = 1; seq <= spooled; seq++) {
            assertEquals(local.get(seq), shipped.get(seq), "record " + seq + " must arrive after the outage");
        }
    }

    /** An allowed produce and fetch and a denied produce and group join on {@code topic} of the own broker. */
    private static void runAllowedAndDeniedCalls(String topic, String deniedGroup) throws Exception {
        try (Admin admin = broker.superAdmin()) {
            Clients.createTopics(admin, topic);
        }
        try (KafkaProducer<String, String> producer =
                Clients.producer(broker.clientConfig(LAB_WRITER, Listener.CLIENT), Map.of())) {
            Clients.sendAll(producer, topic, List.of("panel-1", "panel-2"));
        }
        Map<String, Object> plain = Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        try (KafkaProducer<String, String> producer =
                Clients.producer(broker.clientConfig(BILLING, Listener.CLIENT), plain)) {
            ExecutionException failure = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, "x")).get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, failure.getCause());
        }
        Map<String, Object> reader = broker.clientConfig(LAB_READER, Listener.CLIENT);
        try (KafkaConsumer<String, String> consumer =
                Clients.consumer(reader, Clients.unique("labs-readers."), Map.of())) {
            assertEquals(2, Clients.readValues(consumer, topic, 2, Clients.OPERATION_TIMEOUT).size());
        }
        try (KafkaConsumer<String, String> consumer = Clients.consumer(reader, deniedGroup, Map.of())) {
            assertThrows(GroupAuthorizationException.class,
                    () -> Clients.readValues(consumer, topic, 1, Clients.OPERATION_TIMEOUT));
        }
    }

    /** The sequence numbers of the JSON lines {@code audit subscribe} printed so far. */
    private static List<Long> subscribedSequences(Path output) throws IOException {
        List<Long> sequences = new ArrayList<>();
        for (String line : Files.readAllLines(output, StandardCharsets.UTF_8)) {
            Matcher m = SUBSCRIBED_SEQ.matcher(line);
            if (m.find()) {
                sequences.add(Long.parseLong(m.group(1)));
            }
        }
        return sequences;
    }

    /** Whether one JSON line of {@code audit query --json} holds this decision. */
    private static boolean hasRecord(String jsonLines, String decision, String principal, String operation,
            String resource) {
        return jsonLines.lines().anyMatch(line -> line.contains("\"decision\":\"" + decision + "\"")
                && line.contains("\"name\":\"" + principal + "\"")
                && line.contains("\"operation\":\"" + operation + "\"")
                && line.contains("\"name\":\"" + resource + "\""));
    }

    /** The stored lines of every segment, by sequence number. */
    private static TreeMap<Long, String> localRecords() throws IOException {
        TreeMap<Long, String> records = new TreeMap<>();
        List<Path> segments;
        try (Stream<Path> files = Files.list(auditDir)) {
            segments = files.filter(p -> p.getFileName().toString().matches("seg-\\d{10}\\.jsonl")).sorted()
                    .toList();
        }
        for (Path segment : segments) {
            String text = Files.readString(segment, StandardCharsets.UTF_8);
            // Only complete lines are records; a last line without its newline is still being written.
            String complete = text.substring(0, text.lastIndexOf('\n') + 1);
            for (String line : complete.split("\n")) {
                if (!line.isEmpty()) {
                    records.put(sequence(line), line);
                }
            }
        }
        assertTrue(!records.isEmpty(), "the local log must hold records");
        assertEquals(records.lastKey(), (long) records.size(), "local sequence numbers must run 1..n");
        return records;
    }

    /**
     * Consumes the audit topic from the start until every record up to {@code head} is there, and checks what
     * arrived: each message keyed by its sequence number, numbers without gaps, a repeat (at-least-once) only
     * ever carrying the same bytes.
     */
    private static Map<Long, String> awaitShipped(E2eCluster shared, long head) {
        TreeMap<Long, String> shipped = new TreeMap<>();
        Map<String, Object> config = shared.broker().clientConfig(BROKER, Listener.INTERNAL);
        try (KafkaConsumer<String, String> consumer = Clients.consumer(config, Clients.unique("audit-check."),
                Map.of())) {
            consumer.subscribe(List.of(auditTopic));
            Poll.until("records 1.." + head + " in " + auditTopic, ARRIVAL_DEADLINE, () -> {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                    long seq = sequence(record.value());
                    assertEquals(String.format("%020d", seq), record.key(), "the key is the sequence number");
                    String earlier = shipped.putIfAbsent(seq, record.value());
                    assertTrue(earlier == null || earlier.equals(record.value()), "a repeat must be identical");
                }
                return shipped.headMap(head + 1).size() == head;
            });
        }
        List<Long> numbers = new ArrayList<>(shipped.keySet());
        assertEquals(1L, numbers.get(0), "the topic must start at record 1");
        assertEquals((long) numbers.size(), numbers.get(numbers.size() - 1), "no gaps in the topic");
        return shipped;
    }

    /** Every record in the audit topic now, by sequence number. */
    private static Map<Long, String> readToEnd(E2eCluster shared) throws Exception {
        TopicPartition partition = new TopicPartition(auditTopic, 0);
        long end;
        try (Admin admin = shared.superAdmin()) {
            end = admin.listOffsets(Map.of(partition, org.apache.kafka.clients.admin.OffsetSpec.latest())).all()
                    .get(30, TimeUnit.SECONDS).get(partition).offset();
        }
        Map<Long, String> records = new TreeMap<>();
        Map<String, Object> config = shared.broker().clientConfig(BROKER, Listener.INTERNAL);
        try (KafkaConsumer<String, String> consumer = Clients.consumer(config, Clients.unique("audit-check."),
                Map.of())) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            Poll.until("the audit topic read to offset " + end, ARRIVAL_DEADLINE, () -> {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                    records.put(sequence(record.value()), record.value());
                }
                return consumer.position(partition) >= end;
            });
        }
        return records;
    }

    /** Whether {@code admin}'s user may describe {@code topic}; a topic authorization error means no. */
    private static boolean mayDescribe(Admin admin, String topic) throws Exception {
        try {
            admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS);
            return true;
        } catch (ExecutionException e) {
            assertInstanceOf(TopicAuthorizationException.class, e.getCause(), "unexpected failure");
            return false;
        }
    }

    private static long sequence(String line) {
        Matcher m = SEQUENCE.matcher(line);
        assertTrue(m.find(), "not an audit record: " + line);
        return Long.parseLong(m.group(1));
    }

    /** Runs {@code kafka-pdp ARGS} and fails unless it exits 0. */
    private static ChildProcess.Result cli(String name, String... args) {
        List<String> command = new ArrayList<>();
        command.add(E2eEnvironment.pdpBinary().toString());
        command.addAll(List.of(args));
        ChildProcess.Result result = ChildProcess.run(name, command, work, Duration.ofSeconds(60));
        assertEquals(0, result.exitCode(), String.join(" ", args) + " failed:\n" + result.output());
        return result;
    }

    /**
     * The sink's SASL login over TLS to the shared broker's SASL_SSL listener, in a file only its owner reads: no
     * password on a command line. librdkafka verifies the broker's certificate against its PEM and checks that it
     * names 127.0.0.1 (its default {@code ssl.endpoint.identification.algorithm=https}).
     */
    private static Path sinkConfig(Path file, E2eCluster shared) throws IOException {
        String text = "security.protocol=SASL_SSL\n"
                + "ssl.ca.location=" + shared.broker().tls().certificate() + "\n"
                + "sasl.mechanism=PLAIN\n"
                + "sasl.username=" + RELOAD_PROBE.name() + "\n"
                + "sasl.password=" + RELOAD_PROBE.password() + "\n"
                // Fail a refused batch within seconds, so that the outage test sees a retry.
                + "message.timeout.ms=5000\n";
        Files.writeString(file, text, StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        return file;
    }

    private static String sinkGrant(String topic) {
        return "// Written by AuditTrailTest: the audit sink may write its topic; deleted again by the test.\n"
                + "@id(\"e2e-audit-sink-" + topic + "\")\n"
                + "permit (\n"
                + "  principal == Kafka::Principal::\"" + RELOAD_PROBE.principal() + "\",\n"
                + "  action in Kafka::Action::\"Write\",\n"
                + "  resource == Kafka::Topic::\"" + topic + "\"\n"
                + ");\n";
    }
}
