package dev.kafkapdp.shim;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;

/**
 * A decision the cache holds, and the tally of the requests it answered since the tally was last taken for the
 * audit trail. It is its own key (a {@link DecisionKey} with the decision added) and its own link in the cache's
 * table, so a cache hit compares and counts in one object.
 *
 * <p>The decision part is immutable: what the PDP decided, under which policy version, by which policies, and the
 * Kafka log flags of the action that asked. The tally is the hot path's only write: {@link #hit} adds one to it
 * and moves its last time; whoever takes it from zero to one owns getting it reported (see {@link AuditReporter}).
 * {@link #take} empties it. A hit is never lost between the two: it is either in the count {@code take} returns,
 * or in a tally that starts again from zero and is reported again.
 */
final class Answer extends DecisionKey {
    private static final VarHandle PENDING;

    static {
        try {
            PENDING = MethodHandles.lookup().findVarHandle(Answer.class, "pending", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final boolean allowed;
    /** Allowed because the principal is one of the broker's {@code super.users}: no policy, never cached. */
    final boolean superUser;
    final String policyVersion;
    final List<String> determiningPolicies;
    final boolean logIfAllowed;
    final boolean logIfDenied;

    // Its place in the decision cache: written by the cache under its lock before the answer is linked in (a
    // volatile write that publishes them), read by lookups.
    /** The cache generation it was stored under; another generation's lookups never see it. */
    long generation;
    /** When it stops answering, against the cache's coarse clock. */
    long expiresAtNanos;
    /** The next answer of its chain in the cache's table. */
    volatile Answer next;
    /** Read since the CLOCK hand last passed it. */
    volatile boolean referenced;

    /** Requests answered since the last {@link #take}. */
    private volatile long pending;
    /** When the first and the newest of them were answered, in ms since the epoch, to the cache's clock tick. */
    private volatile long firstMillis;
    private volatile long lastMillis;

    Answer(DecisionKey key, boolean allowed, String policyVersion, List<String> determiningPolicies,
           boolean logIfAllowed, boolean logIfDenied) {
        this(key, allowed, false, policyVersion, determiningPolicies, logIfAllowed, logIfDenied);
    }

    private Answer(DecisionKey key, boolean allowed, boolean superUser, String policyVersion,
                   List<String> determiningPolicies, boolean logIfAllowed, boolean logIfDenied) {
        super(key);
        this.allowed = allowed;
        this.superUser = superUser;
        this.policyVersion = policyVersion;
        this.determiningPolicies = List.copyOf(determiningPolicies);
        this.logIfAllowed = logIfAllowed;
        this.logIfDenied = logIfDenied;
    }

    /** The ALLOW the shim gives a super user for {@code key}, to be tallied for the audit trail like a cache hit. */
    static Answer superUser(DecisionKey key, boolean logIfAllowed, boolean logIfDenied) {
        return new Answer(key, true, true, "", List.of(), logIfAllowed, logIfDenied);
    }

    /** Whether nothing is waiting to be reported; a hit on such an answer starts a new tally. */
    boolean idle() {
        return pending == 0;
    }

    /**
     * Counts one request answered at {@code nowMillis}.
     *
     * @return {@code true} when this hit started a new tally, which the caller must queue for reporting
     */
    boolean hit(long nowMillis) {
        if ((long) PENDING.getAndAdd(this, 1L) == 0) {
            firstMillis = nowMillis;
            lastMillis = nowMillis;
            return true;
        }
        // Read before written: a hot answer hit by many threads within one tick is written once per tick.
        if (lastMillis != nowMillis) {
            lastMillis = nowMillis;
        }
        return false;
    }

    /**
     * Takes the tally: the count (at least 1 once a hit started it), and the first and last times. Hits that race
     * with it either land in the count returned or start a new tally, which the next report carries.
     */
    Tally take() {
        long first = firstMillis;
        long last = lastMillis;
        long count = (long) PENDING.getAndSet(this, 0L);
        return new Tally(count, first, Math.max(first, last));
    }

    /** What {@link #take} returns. */
    record Tally(long count, long firstMillis, long lastMillis) {
    }
}
