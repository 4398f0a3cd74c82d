package dev.kafkapdp.shim;

import java.util.Iterator;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.LongAdder;

/**
 * The shim's local decision cache: bounded, and never answering under a policy version other than the active one.
 *
 * <p>Three guards keep a decision from going stale:
 * <ul>
 *   <li>Every entry carries the cache generation it was stored under. A new policy version, or the loss of the
 *   version stream, starts a new generation, so all older entries stop answering at once (and the map is cleared
 *   to free their memory).</li>
 *   <li>A decision is stored only when the PDP made it under the version the stream last reported, and only when no
 *   new generation began while the request was in flight.</li>
 *   <li>Every entry expires after the configured lifetime, whatever the stream says. Lookups read a coarse clock
 *   that {@link #tick} advances every {@link #TICK_MILLIS} ms (reading {@link System#nanoTime()} on every hit would
 *   cost as much as the lookup itself); entries are stored with one tick less to live, so none answers past its
 *   lifetime unless the ticking thread itself is held up.</li>
 * </ul>
 *
 * <p>Size is bounded by {@code maxEntries}. Eviction is CLOCK (second chance): keys wait in insertion order; a key
 * whose entry was read since it was last passed gets one more round, others are dropped. A hit costs one map
 * lookup, two field compares and, only the first time, one write of the entry's reference bit.
 *
 * <p>Threading: every method is safe to call from many threads. Between {@code put} calls racing with
 * {@link #invalidateAll()}, a few entries of an old generation may stay in the map; they never answer and are
 * counted against the bound, which eviction enforces on every insertion.
 */
final class DecisionCache {

    /** How often the owner should call {@link #tick}, in milliseconds. */
    static final long TICK_MILLIS = 100;
    private static final long TICK_NANOS = TICK_MILLIS * 1_000_000L;

    /** How many referenced keys one insertion may give a second chance before it evicts regardless. */
    private static final int SECOND_CHANCE_BUDGET = 64;

    /** A stored decision. */
    static final class Entry {
        final boolean allowed;
        final long generation;
        final long expiresAtNanos;
        volatile boolean referenced;

        Entry(boolean allowed, long generation, long expiresAtNanos) {
            this.allowed = allowed;
            this.generation = generation;
            this.expiresAtNanos = expiresAtNanos;
        }
    }

    private final ConcurrentHashMap<DecisionKey, Entry> map;
    private final ConcurrentLinkedQueue<DecisionKey> clock = new ConcurrentLinkedQueue<>();
    private final int maxEntries;
    private final long ttlNanos;
    private final LongAdder evictions = new LongAdder();

    /** The coarse clock lookups compare expiry times with: {@link System#nanoTime()} as of the last tick. */
    private volatile long clockNanos = System.nanoTime();
    /** The current generation; entries of any other generation never answer. */
    private volatile long generation;
    /** The policy version the stream last reported, or {@code null} while it is unknown (nothing gets stored). */
    private volatile String activeVersion;

    DecisionCache(int maxEntries, long ttlMillis) {
        this.maxEntries = maxEntries;
        this.ttlNanos = ttlMillis * 1_000_000L;
        this.map = new ConcurrentHashMap<>(Math.min(Math.max(maxEntries, 16), 1 << 16));
    }

    /** The cached decision for the key, or {@code null} when there is none that may answer now. */
    Entry get(DecisionKey key) {
        Entry entry = map.get(key);
        if (entry == null || entry.generation != generation || clockNanos - entry.expiresAtNanos >= 0) {
            return null;
        }
        if (!entry.referenced) {
            entry.referenced = true;
        }
        return entry;
    }

    /** The generation to pass back to {@link #put} for a request that is about to be sent. */
    long generation() {
        return generation;
    }

    /**
     * Stores a decision the PDP made under {@code policyVersion}, for a request sent when the cache was at
     * {@code generationAtSend}. Does nothing when the cache is off, the version is not the active one, or a new
     * generation began in between.
     *
     * @param sentAtNanos {@link System#nanoTime()} when the request was sent; the lifetime counts from then
     */
    void put(DecisionKey key, boolean allowed, String policyVersion, long generationAtSend, long sentAtNanos) {
        String active = activeVersion;
        if (maxEntries == 0 || active == null || !active.equals(policyVersion) || generationAtSend != generation) {
            return;
        }
        Entry previous = map.put(key, new Entry(allowed, generationAtSend, sentAtNanos + ttlNanos - TICK_NANOS));
        if (previous == null) {
            clock.add(key);
        }
        evictOverflow();
    }

    /** Advances the coarse clock; called every {@link #TICK_MILLIS} ms with {@link System#nanoTime()}. */
    void tick(long nowNanos) {
        clockNanos = nowNanos;
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

    /** Starts a new generation and frees the old entries. */
    synchronized void invalidateAll() {
        generation++;
        map.clear();
        clock.clear();
    }

    String activeVersion() {
        return activeVersion;
    }

    int size() {
        return map.size();
    }

    int maxEntries() {
        return maxEntries;
    }

    long evictions() {
        return evictions.sum();
    }

    private void evictOverflow() {
        int secondChances = SECOND_CHANCE_BUDGET;
        while (map.size() > maxEntries) {
            DecisionKey key = clock.poll();
            if (key == null) {
                evictAny();
                continue;
            }
            Entry entry = map.get(key);
            if (entry == null) {
                continue;
            }
            if (entry.referenced && secondChances-- > 0) {
                entry.referenced = false;
                clock.add(key);
                continue;
            }
            if (map.remove(key, entry)) {
                evictions.increment();
            }
        }
    }

    /** Removes one entry the clock does not know of (left behind by a put racing with a clear). */
    private void evictAny() {
        Iterator<DecisionKey> it = map.keySet().iterator();
        if (it.hasNext()) {
            it.next();
            it.remove();
            evictions.increment();
        }
    }
}
