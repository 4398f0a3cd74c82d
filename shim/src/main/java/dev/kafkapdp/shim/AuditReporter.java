package dev.kafkapdp.shim;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.kafkapdp.proto.v1.CachedDecision;
import dev.kafkapdp.proto.v1.Decision;
import dev.kafkapdp.proto.v1.ReportCachedDecisionsRequest;
import io.grpc.StatusRuntimeException;

/**
 * Gets every decision the shim answered from its cache into the PDP's audit trail.
 *
 * <p>A cache hit counts itself in its {@link Answer}'s tally; the hit that starts a tally queues the answer here.
 * Every {@code kafka.pdp.audit.report.interval.ms} the reporter thread takes the queued tallies, one record each
 * (a count with the first and last times: identical answers folded, none dropped), and sends them to the PDP in
 * {@code ReportCachedDecisions} calls. The PDP answers once they are durable in its trail; until then they stay
 * here, and a failed call is retried on the next round, so a record may reach the trail twice but is never lost
 * while the broker runs.
 *
 * <p>The buffer is bounded: queued tallies plus records not yet taken by the PDP never exceed
 * {@code kafka.pdp.audit.buffer.max.records} by more than the number of request threads racing for the last slot.
 * When it is full, a hit that would need a new record is refused ({@code kafka.pdp.audit.deny.when.full}, the
 * default): the broker's question goes to the PDP, which records it, and is denied if the PDP cannot answer. With
 * the option off the hit is answered unrecorded and counted. Hits on answers whose tally has already started
 * never need room.
 *
 * <p>Known shortcoming: what the buffer holds when the broker process dies is lost (at most one report interval of
 * cache answers, folded); a clean shutdown sends it first, within {@link #REPORT_DEADLINE_MS}.
 */
final class AuditReporter {
    private static final Logger LOG = LoggerFactory.getLogger(AuditReporter.class);
    /** Most records in one call; the PDP refuses more than 10,000. */
    static final int MAX_RECORDS_PER_CALL = 5_000;
    /** How long one report call may wait for the PDP: it is off the request path. */
    static final long REPORT_DEADLINE_MS = 10_000;

    /** Sends one report; the PDP client in production. */
    interface Sender {
        void send(ReportCachedDecisionsRequest request);
    }

    private final Queue<Answer> started = new ConcurrentLinkedQueue<>();
    /** Tallies queued in {@link #started} plus records in {@link #unsent}. */
    private final AtomicInteger buffered = new AtomicInteger();
    /** Records taken from tallies, oldest first, not yet accepted by the PDP. Guarded by {@code this}. */
    private final ArrayDeque<CachedDecision> unsent = new ArrayDeque<>();
    private final int maxRecords;
    private final boolean denyWhenFull;
    private final int brokerId;
    private final ShimMetrics metrics;
    private final Sender sender;
    /** Held for a whole round: the reporter thread's rounds and the last one at close never overlap. */
    private final Object rounds = new Object();

    AuditReporter(PdpConfig config, ShimMetrics metrics, Sender sender) {
        this.maxRecords = config.auditBufferMaxRecords();
        this.denyWhenFull = config.auditDenyWhenFull();
        this.brokerId = config.brokerId();
        this.metrics = metrics;
        this.sender = sender;
    }

    /**
     * Counts a cache hit on {@code answer} at {@code nowMillis} for the audit trail: the hot path.
     *
     * @return {@code false} when the hit must not be answered from the cache (the buffer is full and the broker
     *     asked to deny rather than forget); the caller then treats it as a miss
     */
    boolean hit(Answer answer, long nowMillis) {
        if (answer.idle() && buffered.get() >= maxRecords) {
            if (denyWhenFull) {
                metrics.auditBufferFullMisses.increment();
                return false;
            }
            metrics.auditUnrecorded.increment();
            (answer.allowed ? metrics.hitsAllowed : metrics.hitsDenied).increment();
            return true;
        }
        if (answer.hit(nowMillis)) {
            buffered.incrementAndGet();
            started.add(answer);
        }
        return true;
    }

    /**
     * Counts a super user's ALLOW for the audit trail. Never refuses: the broker's own principals are super users,
     * and denying them would stop the cluster. A hit that would need a new record while the buffer is full is
     * counted in {@code audit-unrecorded-total} instead.
     */
    void superUserHit(Answer answer, long nowMillis) {
        if (answer.idle() && buffered.get() >= maxRecords) {
            metrics.auditUnrecorded.increment();
            return;
        }
        if (answer.hit(nowMillis)) {
            buffered.incrementAndGet();
            started.add(answer);
        }
    }

    /** Records held: started tallies and records the PDP has not taken yet. */
    int buffered() {
        return buffered.get();
    }

    int maxRecords() {
        return maxRecords;
    }

    /** Takes every started tally into a record, counting its hits; cheap enough for a metrics read. */
    synchronized void collect() {
        for (Answer answer = started.poll(); answer != null; answer = started.poll()) {
            Answer.Tally tally = answer.take();
            if (tally.count() == 0) {
                buffered.decrementAndGet(); // INVARIANT: cannot happen, a queued tally was started by a hit
                continue;
            }
            if (!answer.superUser) { // a super user's ALLOW is counted as it is given, not as a cache hit
                (answer.allowed ? metrics.hitsAllowed : metrics.hitsDenied).add(tally.count());
            }
            unsent.addLast(record(answer, tally));
        }
    }

    /**
     * One round: takes the tallies and sends everything held, oldest first, until the PDP has it all or a call
     * fails (the rest waits for the next round).
     *
     * @return whether the buffer was emptied
     */
    boolean report() {
        synchronized (rounds) {
            return reportRound();
        }
    }

    private boolean reportRound() {
        collect();
        while (true) {
            List<CachedDecision> batch = oldest(MAX_RECORDS_PER_CALL);
            if (batch.isEmpty()) {
                return true;
            }
            try {
                sender.send(ReportCachedDecisionsRequest.newBuilder().addAllDecisions(batch).build());
            } catch (StatusRuntimeException e) {
                metrics.auditReportFailures.increment();
                LOG.warn("the PDP did not take {} audit record(s) of cache answers ({}: {}); {} held, sending again"
                    + " in the next round", batch.size(), e.getStatus().getCode(), e.getStatus().getDescription(),
                    buffered.get());
                return false;
            }
            dropOldest(batch.size());
            metrics.auditRecordsReported.add(batch.size());
        }
    }

    /** A last round before the broker stops; says how much is lost if the PDP does not take it. */
    void flushOnClose() {
        if (!report()) {
            LOG.error("{} audit record(s) of cache answers could not be handed to the PDP before shutdown and are lost",
                buffered.get());
        }
    }

    private synchronized List<CachedDecision> oldest(int max) {
        List<CachedDecision> batch = new ArrayList<>(Math.min(max, unsent.size()));
        Iterator<CachedDecision> records = unsent.iterator();
        while (batch.size() < max && records.hasNext()) {
            batch.add(records.next());
        }
        return batch;
    }

    /** Only the reporter thread removes, and only what it sent: the oldest records. */
    private synchronized void dropOldest(int count) {
        for (int i = 0; i < count; i++) {
            unsent.pollFirst();
        }
        buffered.addAndGet(-count);
    }

    private CachedDecision record(Answer answer, Answer.Tally tally) {
        return CachedDecision.newBuilder()
            .setContext(answer.context(brokerId))
            .setAction(answer.action(answer.logIfAllowed, answer.logIfDenied))
            .setDecision(answer.allowed ? Decision.DECISION_ALLOW : Decision.DECISION_DENY)
            .setPolicyVersion(answer.policyVersion)
            .addAllDeterminingPolicies(answer.determiningPolicies)
            .setCount(tally.count())
            .setFirstTimeUnixMs(tally.firstMillis())
            .setLastTimeUnixMs(tally.lastMillis())
            .setSuperUser(answer.superUser)
            .build();
    }
}
