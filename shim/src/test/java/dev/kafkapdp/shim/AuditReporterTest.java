package dev.kafkapdp.shim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.junit.jupiter.api.Test;

import dev.kafkapdp.proto.v1.CachedDecision;
import dev.kafkapdp.proto.v1.Decision;
import dev.kafkapdp.proto.v1.Operation;
import io.grpc.Status;

class AuditReporterTest {

    /** What the PDP side of the test took; can be told to refuse. */
    private static final class Pdp implements AuditReporter.Sender {
        final List<CachedDecision> taken = new ArrayList<>();
        volatile boolean refuse;

        @Override
        public synchronized void send(dev.kafkapdp.proto.v1.ReportCachedDecisionsRequest request) {
            if (refuse) {
                throw Status.UNAVAILABLE.withDescription("the PDP is down").asRuntimeException();
            }
            taken.addAll(request.getDecisionsList());
        }

        synchronized long total() {
            return taken.stream().mapToLong(CachedDecision::getCount).sum();
        }
    }

    private final ShimMetrics metrics = new ShimMetrics();
    private final Pdp pdp = new Pdp();

    private AuditReporter reporter(int maxRecords, boolean denyWhenFull) {
        PdpConfig config = PdpConfig.parse(Map.of(
            PdpConfig.AUDIT_BUFFER_MAX_RECORDS_CONFIG, String.valueOf(maxRecords),
            PdpConfig.AUDIT_DENY_WHEN_FULL_CONFIG, String.valueOf(denyWhenFull),
            PdpConfig.NODE_ID_CONFIG, "7"));
        return new AuditReporter(config, metrics, pdp);
    }

    private static Answer answer(String topic, boolean allowed) {
        DecisionKey key = DecisionKey.of("User", "alice", InetAddress.getLoopbackAddress(), "SASL_SSL",
            SecurityProtocol.SASL_SSL, "app-1", 1, AclOperation.READ, ResourceType.TOPIC, topic, PatternType.LITERAL);
        return new Answer(key, allowed, "v1", List.of("consumer-read"), true, false);
    }

    @Test
    void identicalHitsAreFoldedIntoOneRecordWithCountAndTimes() {
        AuditReporter reporter = reporter(100, true);
        Answer labs = answer("phi.labs", true);
        assertTrue(reporter.hit(labs, 1_000));
        assertTrue(reporter.hit(labs, 1_100));
        assertTrue(reporter.hit(labs, 1_300));
        assertTrue(reporter.hit(answer("phi.notes", false), 1_200));
        assertEquals(2, reporter.buffered());

        assertTrue(reporter.report());

        assertEquals(2, pdp.taken.size());
        CachedDecision folded = pdp.taken.get(0);
        assertEquals(3, folded.getCount());
        assertEquals(1_000, folded.getFirstTimeUnixMs());
        assertEquals(1_300, folded.getLastTimeUnixMs());
        assertEquals(Decision.DECISION_ALLOW, folded.getDecision());
        assertEquals("v1", folded.getPolicyVersion());
        assertEquals(List.of("consumer-read"), folded.getDeterminingPoliciesList());
        assertEquals("User", folded.getContext().getPrincipal().getType());
        assertEquals("alice", folded.getContext().getPrincipal().getName());
        assertEquals("FETCH", folded.getContext().getRequestApi());
        assertEquals(7, folded.getContext().getBrokerId());
        assertEquals(Operation.OPERATION_READ, folded.getAction().getOperation());
        assertEquals("phi.labs", folded.getAction().getResourceName());
        assertTrue(folded.getAction().getLogIfAllowed());
        assertFalse(folded.getAction().getLogIfDenied());
        assertEquals(Decision.DECISION_DENY, pdp.taken.get(1).getDecision());
        assertEquals(0, reporter.buffered());
        assertEquals(3, metrics.hitsAllowed.sum());
        assertEquals(1, metrics.hitsDenied.sum());

        // A new tally starts after the report.
        reporter.hit(labs, 2_000);
        reporter.report();
        assertEquals(3, pdp.taken.size());
        assertEquals(1, pdp.taken.get(2).getCount());
        assertEquals(2_000, pdp.taken.get(2).getFirstTimeUnixMs());
    }

    @Test
    void recordsThePdpDidNotTakeAreKeptAndSentAgain() {
        AuditReporter reporter = reporter(100, true);
        Answer labs = answer("phi.labs", true);
        reporter.hit(labs, 1_000);
        reporter.hit(labs, 1_000);
        pdp.refuse = true;

        assertFalse(reporter.report());
        assertEquals(1, reporter.buffered());
        assertEquals(1, metrics.auditReportFailures.sum());
        reporter.hit(labs, 1_500);
        pdp.refuse = false;

        assertTrue(reporter.report());
        assertEquals(3, pdp.total());
        assertEquals(0, reporter.buffered());
        assertEquals(2, metrics.auditRecordsReported.sum());
    }

    @Test
    void aFullBufferSendsNewAnswersToThePdpButKeepsCountingStartedOnes() {
        AuditReporter reporter = reporter(2, true);
        Answer a = answer("a", true);
        Answer b = answer("b", true);
        assertTrue(reporter.hit(a, 1));
        assertTrue(reporter.hit(b, 1));

        assertFalse(reporter.hit(answer("c", true), 1), "a third record does not fit");
        assertEquals(1, metrics.auditBufferFullMisses.sum());
        assertTrue(reporter.hit(a, 2), "a started tally needs no room");

        pdp.refuse = true;
        reporter.report();
        assertFalse(reporter.hit(answer("c", true), 3), "records the PDP has not taken still hold their room");
        pdp.refuse = false;
        reporter.report();
        assertTrue(reporter.hit(answer("c", true), 4));
        assertEquals(3, pdp.total());
    }

    @Test
    void withDenyingTurnedOffAFullBufferAnswersAndCountsTheHitUnrecorded() {
        AuditReporter reporter = reporter(1, false);
        assertTrue(reporter.hit(answer("a", true), 1));
        assertTrue(reporter.hit(answer("b", false), 1));
        assertEquals(1, metrics.auditUnrecorded.sum());
        assertEquals(1, metrics.hitsDenied.sum(), "the unrecorded hit is still a decision");
        reporter.report();
        assertEquals(1, pdp.total());
    }

    @Test
    void aSuperUsersAllowIsReportedAsSuchAndNeverRefused() {
        AuditReporter reporter = reporter(1, true);
        assertTrue(reporter.hit(answer("a", true), 1), "fills the buffer");
        Answer admin = Answer.superUser(answer("phi.labs", true), true, true);
        reporter.superUserHit(admin, 2);
        assertEquals(1, metrics.auditUnrecorded.sum(), "no room: counted, and the ALLOW stands");

        reporter.report();
        reporter.superUserHit(admin, 3);
        reporter.superUserHit(admin, 4);
        reporter.report();

        CachedDecision record = pdp.taken.get(1);
        assertTrue(record.getSuperUser());
        assertEquals(Decision.DECISION_ALLOW, record.getDecision());
        assertEquals(2, record.getCount());
        assertEquals("", record.getPolicyVersion());
        assertEquals(0, record.getDeterminingPoliciesCount());
        assertEquals(1, metrics.hitsAllowed.sum(), "a super user's ALLOW is not a cache hit");
    }

    @Test
    void noHitIsLostWhileReportsRunConcurrently() throws Exception {
        AuditReporter reporter = reporter(1_000_000, true);
        List<Answer> answers = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            answers.add(answer("t" + i, i % 2 == 0));
        }
        int threads = 4;
        int hitsPerThread = 200_000;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        CountDownLatch start = new CountDownLatch(1);
        AtomicBoolean done = new AtomicBoolean();
        List<Future<?>> hitters = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            hitters.add(pool.submit(() -> {
                start.await();
                ThreadLocalRandom random = ThreadLocalRandom.current();
                for (int i = 0; i < hitsPerThread; i++) {
                    reporter.hit(answers.get(random.nextInt(answers.size())), 1_000 + i / 1000);
                }
                return null;
            }));
        }
        Thread rounds = new Thread(() -> {
            while (!done.get()) {
                pdp.refuse = ThreadLocalRandom.current().nextInt(4) == 0;
                reporter.report();
            }
        });
        rounds.start();
        start.countDown();
        for (Future<?> hitter : hitters) {
            hitter.get();
        }
        done.set(true);
        rounds.join();
        pool.shutdown();
        pdp.refuse = false;
        assertTrue(reporter.report());

        assertEquals((long) threads * hitsPerThread, pdp.total());
        assertEquals(0, reporter.buffered());
        assertEquals((long) threads * hitsPerThread, metrics.cacheHits());
        for (CachedDecision record : pdp.taken) {
            assertTrue(record.getCount() >= 1 && record.getFirstTimeUnixMs() <= record.getLastTimeUnixMs());
        }
    }
}
