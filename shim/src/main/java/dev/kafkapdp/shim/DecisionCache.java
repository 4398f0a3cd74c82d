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
 * and makes no megamorphic {@code equals} call. It is an array of immutable chains that doubles as it fills (at
 * most 3/4 full): readers walk a chain without locks; writers (a store after a PDP round trip, an eviction, a
 * version change, a resize) take one lock and replace a whole chain or the whole array, so a reader sees either the
 * old chain or the new one, never a half-built one.
 *
 * <p>Size is bounded by {@code maxEntries}. Eviction is CLOCK (second chance): keys wait in insertion order; a key
 * whose entry was read since it was last passed gets one more round, others are dropped. A chain never grows past
 * {@link #MAX_CHAIN} entries, so lookups stay short even when clients choose resource names that collide.
 */
final class DecisionCache {

    /** How often the owner should call {@link #tick}, in milliseconds. */
    static final long TICK_MILLIS = 100;
    private static final long TICK_NANOS = TICK_MILLIS * 1_000_000L;
    /** The table starts this small (a version change empties it back to this) and doubles as entries arrive. */
    private static final int MIN_SLOTS = 64;
    /** The table never grows past this many slots; beyond it chains get longer (only for huge bounds). */
    private static final int MAX_SLOTS = 1 << 24;
    /** Longest chain a new key is added to; see {@link #put}. */
    private static final int MAX_CHAIN = 8;
    /** How many referenced keys one insertion may give a second chance before it evicts regardless. */
    private static final int SECOND_CHANCE_BUDGET = 64;

    /**
     * A stored decision, and the link to the next entry of its chain. Immutable but for the reference bit; a copy
     * made when a chain is rebuilt shares the original's {@link Answer}, so its audit tally is never split.
     */
    static final class Entry {
        /** The decision and, being its own key, what it answers. */
        final Answer answer;
        final long generation;
        final long expiresAtNanos;
        final Entry next;
        volatile boolean referenced;

        Entry(Answer answer, long generation, long expiresAtNanos, Entry next) {
            this.answer = answer;
            this.generation = generation;
            this.expiresAtNanos = expiresAtNanos;
            this.next = next;
        }

        Entry withNext(Entry newNext) {
            Entry copy = new Entry(answer, generation, expiresAtNanos, newNext);
            copy.referenced = referenced;
            return copy;
        }
    }

    /** Replaced whole when it grows or empties; its chains are replaced under {@code this}. */
    private volatile AtomicReferenceArray<Entry> table = new AtomicReferenceArray<>(MIN_SLOTS);
    private final int maxEntries;
    private final long ttlNanos;
    /** Keys in insertion order for CLOCK eviction. Guarded by {@code this}. */
    private final ArrayDeque<DecisionKey> clock = new ArrayDeque<>();

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
    }

    /**
     * The cached decision for {@code action} of the request {@code ctx}, or {@code null} when none may answer now.
     * Builds no key: the hot path of every cached decision.
     */
    Entry get(AuthorizableRequestContext ctx, int contextHash, Action action) {
        int hash = DecisionKey.hash(contextHash, action);
        AtomicReferenceArray<Entry> slots = table;
        for (Entry entry = slots.get(hash & (slots.length() - 1)); entry != null; entry = entry.next) {
            if (entry.answer.hashCode() == hash && entry.answer.matches(ctx, action)) {
                return answering(entry);
            }
        }
        return null;
    }

    /** The cached decision for the key, or {@code null}; for tests and the general path. */
    Entry get(DecisionKey key) {
        AtomicReferenceArray<Entry> slots = table;
        for (Entry entry = slots.get(key.hashCode() & (slots.length() - 1)); entry != null; entry = entry.next) {
            if (entry.answer.equals(key)) {
                return answering(entry);
            }
        }
        return null;
    }

    private Entry answering(Entry entry) {
        if (entry.generation != generation || clockNanos - entry.expiresAtNanos >= 0) {
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
     * Stores a decision the PDP made (under {@code answer.policyVersion}), for a request sent when the cache was at
     * {@code generationAtSend}. Does nothing when the cache is off, the version is not the active one, or a new
     * generation began in between.
     *
     * @param sentAtNanos {@link System#nanoTime()} when the request was sent; the lifetime counts from then
     */
    synchronized void put(Answer answer, long generationAtSend, long sentAtNanos) {
        String active = activeVersion;
        DecisionKey key = answer;
        if (maxEntries == 0 || active == null || !active.equals(answer.policyVersion)
            || generationAtSend != generation) {
            return;
        }
        AtomicReferenceArray<Entry> slots = table;
        int slot = key.hashCode() & (slots.length() - 1);
        Entry chain = slots.get(slot);
        Entry rest = without(chain, key);
        if (rest == chain) {
            if (length(chain) >= MAX_CHAIN) {
                // Keys that collide this much are most likely crafted (resource names are the client's to choose):
                // leave them uncached rather than let one chain, and every lookup through it, grow without bound.
                return;
            }
            size++;
            clock.addLast(key);
        }
        slots.set(slot, new Entry(answer, generationAtSend, sentAtNanos + ttlNanos - TICK_NANOS, rest));
        evictOverflow();
        if (size > slots.length() - slots.length() / 4 && slots.length() < MAX_SLOTS) {
            grow(slots);
        }
    }

    /** Doubles the table: builds the new one aside, then publishes it; readers use either, both are whole. */
    private void grow(AtomicReferenceArray<Entry> old) {
        AtomicReferenceArray<Entry> bigger = new AtomicReferenceArray<>(old.length() * 2);
        int mask = bigger.length() - 1;
        for (int slot = 0; slot < old.length(); slot++) {
            for (Entry entry = old.get(slot); entry != null; entry = entry.next) {
                int target = entry.answer.hashCode() & mask;
                bigger.set(target, entry.withNext(bigger.get(target)));
            }
        }
        table = bigger;
    }

    /** The chain without the entry of {@code key}, copying the entries before it; the same chain if it is absent. */
    private static Entry without(Entry chain, DecisionKey key) {
        int position = 0;
        Entry found = chain;
        while (found != null && !found.answer.equals(key)) {
            found = found.next;
            position++;
        }
        if (found == null) {
            return chain;
        }
        Entry[] before = new Entry[position];
        Entry entry = chain;
        for (int i = 0; i < position; i++) {
            before[i] = entry;
            entry = entry.next;
        }
        Entry rest = found.next;
        for (int i = position - 1; i >= 0; i--) {
            rest = before[i].withNext(rest);
        }
        return rest;
    }

    private static int length(Entry chain) {
        int length = 0;
        for (Entry entry = chain; entry != null; entry = entry.next) {
            length++;
        }
        return length;
    }

    private void evictOverflow() {
        int secondChances = SECOND_CHANCE_BUDGET;
        while (size > maxEntries) {
            DecisionKey key = clock.pollFirst();
            AtomicReferenceArray<Entry> slots = table;
            int slot = key.hashCode() & (slots.length() - 1);
            Entry chain = slots.get(slot);
            Entry entry = find(chain, key);
            if (entry == null) {
                continue; // INVARIANT: cannot happen, the clock holds exactly the keys in the table
            }
            if (entry.referenced && secondChances-- > 0) {
                entry.referenced = false;
                clock.addLast(key);
                continue;
            }
            slots.set(slot, without(chain, key));
            size--;
            evictions++;
        }
    }

    private static Entry find(Entry chain, DecisionKey key) {
        Entry entry = chain;
        while (entry != null && !entry.answer.equals(key)) {
            entry = entry.next;
        }
        return entry;
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
        table = new AtomicReferenceArray<>(MIN_SLOTS);
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
