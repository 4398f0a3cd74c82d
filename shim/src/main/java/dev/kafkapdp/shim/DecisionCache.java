package dev.kafkapdp.shim;

import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicReferenceArray;

import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;

/**
 * The shim's local decision cache: bounded, and never answering under a policy version other than the active one.
 *
 * <p>Three guards keep a decision from going stale:
 * <ul>
 *   <li>Every entry carries the cache generation it was stored under. A new policy version, or the loss of the
 *   version stream, starts a new generation and empties the table, so no older entry can answer again.</li>
 *   <li>A decision is stored only when the PDP made it under the version the stream last reported, and only when no
 *   new generation began while the request was in flight.</li>
 *   <li>Every entry expires after the configured lifetime, whatever the stream says. Lookups read a coarse clock
 *   that {@link #tick} advances every {@link #TICK_MILLIS} ms (reading {@link System#nanoTime()} on every hit would
 *   cost as much as the lookup itself); entries are stored with one tick less to live, so none answers past its
 *   lifetime unless the ticking thread itself is held up.</li>
 * </ul>
 *
 * <p>Why not a {@code ConcurrentHashMap}: measured in the JMH benchmark, a hit through one (a key object built per
 * action, then {@code get}) cost about five bare {@code ConcurrentHashMap.get}s, over the budget of three. This table
 * is looked up straight from the request and the action ({@link DecisionKey#matches}), so a hit allocates nothing
 * and makes no megamorphic {@code equals} call. Its chains are made of the {@link Answer}s themselves (an answer
 * is its own key and its own chain link), so a hit reads the slot, the answer and the resource name, as a
 * {@code ConcurrentHashMap} hit reads its slot, node and key. The table is sized once for {@code maxEntries} (at
 * most 3/4 full) and never resized, so a link is never copied and an answer's audit tally never splits. Readers
 * walk a chain without locks; writers (a store, an eviction, a version change) hold one lock: a store links the
 * new answer in front of its chain (replacing one with the same key in place), an eviction unlinks one, a version
 * change swaps in an empty table. A reader sees every chain whole, before or after a change.
 *
 * <p>Size is bounded by {@code maxEntries}. Eviction is CLOCK (second chance): keys wait in insertion order; a key
 * whose answer was read since it was last passed gets one more round, others are dropped. A chain never grows past
 * {@link #MAX_CHAIN} answers, so lookups stay short even when clients choose resource names that collide.
 */
final class DecisionCache {

    /** How often the owner should call {@link #tick}, in milliseconds. */
    static final long TICK_MILLIS = 100;
    private static final long TICK_NANOS = TICK_MILLIS * 1_000_000L;
    /** The table never has more slots than this; beyond it chains get longer (only for huge bounds). */
    private static final int MAX_SLOTS = 1 << 24;
    /** Longest chain a new key is added to; see {@link #put}. */
    private static final int MAX_CHAIN = 8;
    /** How many referenced keys one insertion may give a second chance before it evicts regardless. */
    private static final int SECOND_CHANCE_BUDGET = 64;

    /** Replaced whole on a version change; its chains are changed under {@code this}. */
    private volatile AtomicReferenceArray<Answer> table;
    private final int slots;
    private final int maxEntries;
    private final long ttlNanos;
    /** Keys in insertion order for CLOCK eviction (answers, which are their keys). Guarded by {@code this}. */
    private final ArrayDeque<Answer> clock = new ArrayDeque<>();

    /** The coarse clock lookups compare expiry times with: {@link System#nanoTime()} as of the last tick. */
    private volatile long clockNanos = System.nanoTime();
    /** {@link System#currentTimeMillis()} as of the last tick: the time audit tallies are stamped with. */
    private volatile long clockMillis = System.currentTimeMillis();
    /** The current generation; entries of any other generation never answer. Written under {@code this}. */
    private volatile long generation;
    /** The policy version the stream last reported, or {@code null} while it is unknown (nothing gets stored). */
    private volatile String activeVersion;
    /** Entries in the table. Written under {@code this}. */
    private volatile int size;
    private volatile long evictions;

    DecisionCache(int maxEntries, long ttlMillis) {
        this.maxEntries = maxEntries;
        this.ttlNanos = ttlMillis * 1_000_000L;
        this.slots = slotsFor(maxEntries);
        this.table = new AtomicReferenceArray<>(slots);
    }

    /** A power of two with room for {@code maxEntries} at 3/4 full. */
    private static int slotsFor(int maxEntries) {
        long wanted = Math.max(16, (long) maxEntries * 4 / 3 + 1);
        return (int) Math.min(MAX_SLOTS, Long.highestOneBit(wanted - 1) << 1);
    }

    /**
     * The cached decision for {@code action} of the request {@code ctx}, or {@code null} when none may answer now.
     * Builds no key: the hot path of every cached decision.
     */
    Answer get(AuthorizableRequestContext ctx, int contextHash, Action action) {
        int hash = DecisionKey.hash(contextHash, action);
        AtomicReferenceArray<Answer> slots = table;
        for (Answer answer = slots.get(hash & (slots.length() - 1)); answer != null; answer = answer.next) {
            if (answer.hashCode() == hash && answer.matches(ctx, action)) {
                return answering(answer);
            }
        }
        return null;
    }

    /** The cached decision for the key, or {@code null}; for tests and the general path. */
    Answer get(DecisionKey key) {
        AtomicReferenceArray<Answer> slots = table;
        for (Answer answer = slots.get(key.hashCode() & (slots.length() - 1)); answer != null;
             answer = answer.next) {
            if (answer.equals(key)) {
                return answering(answer);
            }
        }
        return null;
    }

    private Answer answering(Answer answer) {
        if (answer.generation != generation || clockNanos - answer.expiresAtNanos >= 0) {
            return null;
        }
        if (!answer.referenced) {
            answer.referenced = true;
        }
        return answer;
    }

    /** The generation to pass back to {@link #put} for a request that is about to be sent. */
    long generation() {
        return generation;
    }

    /**
     * Stores a decision the PDP made (under {@code answer.policyVersion}), for a request sent when the cache was at
     * {@code generationAtSend}. Does nothing when the cache is off, the version is not the active one, or a new
     * generation began in between. An answer is stored at most once.
     *
     * @param sentAtNanos {@link System#nanoTime()} when the request was sent; the lifetime counts from then
     */
    synchronized void put(Answer answer, long generationAtSend, long sentAtNanos) {
        String active = activeVersion;
        if (maxEntries == 0 || active == null || !active.equals(answer.policyVersion)
            || generationAtSend != generation) {
            return;
        }
        answer.generation = generationAtSend;
        answer.expiresAtNanos = sentAtNanos + ttlNanos - TICK_NANOS;
        AtomicReferenceArray<Answer> slots = table;
        int slot = answer.hashCode() & (slots.length() - 1);
        Answer head = slots.get(slot);
        Answer before = null;
        int length = 0;
        for (Answer link = head; link != null; before = link, link = link.next, length++) {
            if (link.equals(answer)) {
                // Same key: the new answer takes the old one's place (the CLOCK finds it by its key).
                answer.next = link.next;
                answer.referenced = link.referenced;
                relink(slots, slot, before, answer);
                return;
            }
        }
        if (length >= MAX_CHAIN) {
            // Keys that collide this much are most likely crafted (resource names are the client's to choose):
            // leave them uncached rather than let one chain, and every lookup through it, grow without bound.
            return;
        }
        answer.next = head;
        slots.set(slot, answer);
        size++;
        clock.addLast(answer);
        evictOverflow();
    }

    /** Makes {@code after} the link after {@code before}, or the slot's first when {@code before} is null. */
    private static void relink(AtomicReferenceArray<Answer> slots, int slot, Answer before, Answer after) {
        if (before == null) {
            slots.set(slot, after);
        } else {
            before.next = after;
        }
    }

    private void evictOverflow() {
        int secondChances = SECOND_CHANCE_BUDGET;
        AtomicReferenceArray<Answer> slots = table;
        while (size > maxEntries) {
            Answer key = clock.pollFirst();
            int slot = key.hashCode() & (slots.length() - 1);
            Answer before = null;
            Answer found = slots.get(slot);
            while (found != null && !found.equals(key)) {
                before = found;
                found = found.next;
            }
            if (found == null) {
                continue; // INVARIANT: cannot happen, the clock holds exactly the keys in the table
            }
            if (found.referenced && secondChances-- > 0) {
                found.referenced = false;
                clock.addLast(key);
                continue;
            }
            // A reader standing on the unlinked answer still goes on through its `next`.
            relink(slots, slot, before, found.next);
            size--;
            evictions++;
        }
    }

    /**
     * Advances the coarse clock; called every {@link #TICK_MILLIS} ms with {@link System#nanoTime()} and
     * {@link System#currentTimeMillis()}.
     */
    void tick(long nowNanos, long nowMillis) {
        clockNanos = nowNanos;
        clockMillis = nowMillis;
    }

    /** The wall clock as of the last tick, in ms since the epoch. */
    long clockMillis() {
        return clockMillis;
    }

    /** A new policy version is active: forget every decision and store new ones under it. */
    synchronized void onPolicyVersion(String version) {
        activeVersion = version;
        invalidateAll();
    }

    /** The version stream is lost: a new version may be missed, so forget everything and store nothing. */
    synchronized void onVersionUnknown() {
        activeVersion = null;
        invalidateAll();
    }

    /** Starts a new generation and empties the table. */
    synchronized void invalidateAll() {
        generation++;
        table = new AtomicReferenceArray<>(slots);
        clock.clear();
        size = 0;
    }

    String activeVersion() {
        return activeVersion;
    }

    int size() {
        return size;
    }

    int maxEntries() {
        return maxEntries;
    }

    long evictions() {
        return evictions;
    }
}
