package dev.kafkapdp.shim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.junit.jupiter.api.Test;

class DecisionCacheTest {

    private static final long NOW = 1_000_000_000L;
    private static final long MS = 1_000_000L;
    private static DecisionKey key(int i) {
        return DecisionKey.of("User", "alice", InetAddress.getLoopbackAddress(), "PLAINTEXT",
            SecurityProtocol.PLAINTEXT, "app", 0, AclOperation.READ, ResourceType.TOPIC, "topic-" + i,
            PatternType.LITERAL);
    }

    private static DecisionCache cacheAt(String version, int max, long ttlMs) {
        DecisionCache cache = new DecisionCache(max, ttlMs);
        cache.tick(NOW, 0);
        cache.onPolicyVersion(version);
        return cache;
    }

    @Test
    void storedDecisionAnswersUntilItsLifetimeEnds() {
        DecisionCache cache = cacheAt("v1", 10, 1000);
        cache.put(TestContexts.answer(key(1), true, "v1"), cache.generation(), NOW);

        cache.tick(NOW + (999 - DecisionCache.TICK_MILLIS) * MS, 0);
        Answer hit = cache.get(key(1));
        assertNotNull(hit);
        assertTrue(hit.allowed);
        // One tick is taken off the lifetime, so that a clock read up to one tick late still expires it in time.
        cache.tick(NOW + (1000 - DecisionCache.TICK_MILLIS) * MS, 0);
        assertNull(cache.get(key(1)), "an entry must not answer past its lifetime");
    }

    @Test
    void newPolicyVersionDropsEverything() {
        DecisionCache cache = cacheAt("v1", 10, 60_000);
        cache.put(TestContexts.answer(key(1), false, "v1"), cache.generation(), NOW);

        cache.onPolicyVersion("v2");

        assertNull(cache.get(key(1)));
        assertEquals(0, cache.size());
    }

    @Test
    void decisionFromAnotherVersionIsNotStored() {
        DecisionCache cache = cacheAt("v2", 10, 60_000);
        cache.put(TestContexts.answer(key(1), true, "v1"), cache.generation(), NOW);
        assertNull(cache.get(key(1)));
    }

    @Test
    void decisionSentBeforeAVersionChangeIsNotStored() {
        DecisionCache cache = cacheAt("v1", 10, 60_000);
        long generationAtSend = cache.generation();
        cache.onPolicyVersion("v1"); // the stream repeated the version: still a new generation
        cache.put(TestContexts.answer(key(1), true, "v1"), generationAtSend, NOW);
        assertNull(cache.get(key(1)));
        assertEquals(0, cache.size());
    }

    @Test
    void nothingIsStoredWhileTheVersionIsUnknown() {
        DecisionCache cache = new DecisionCache(10, 60_000);
        cache.tick(NOW, 0);
        cache.put(TestContexts.answer(key(1), true, "v1"), cache.generation(), NOW);
        assertNull(cache.get(key(1)));

        cache.onPolicyVersion("v1");
        cache.put(TestContexts.answer(key(1), true, "v1"), cache.generation(), NOW);
        assertNotNull(cache.get(key(1)));

        cache.onVersionUnknown();
        assertNull(cache.get(key(1)), "losing the stream must drop what was cached");
        cache.put(TestContexts.answer(key(1), true, "v1"), cache.generation(), NOW);
        assertNull(cache.get(key(1)));
    }

    @Test
    void zeroSizeTurnsTheCacheOff() {
        DecisionCache cache = cacheAt("v1", 0, 60_000);
        cache.put(TestContexts.answer(key(1), true, "v1"), cache.generation(), NOW);
        assertNull(cache.get(key(1)));
        assertEquals(0, cache.size());
    }

    @Test
    void sizeNeverExceedsTheBound() {
        DecisionCache cache = cacheAt("v1", 100, 60_000);
        for (int i = 0; i < 10_000; i++) {
            cache.put(TestContexts.answer(key(i), i % 2 == 0, "v1"), cache.generation(), NOW);
            assertTrue(cache.size() <= 100);
        }
        assertEquals(100, cache.size());
        assertEquals(9_900, cache.evictions());
    }

    @Test
    void recentlyReadEntriesSurviveEviction() {
        DecisionCache cache = cacheAt("v1", 10, 60_000);
        for (int i = 0; i < 10; i++) {
            cache.put(TestContexts.answer(key(i), true, "v1"), cache.generation(), NOW);
        }
        assertNotNull(cache.get(key(0))); // key 0 is the oldest, but it was just read

        cache.put(TestContexts.answer(key(10), true, "v1"), cache.generation(), NOW);

        assertNotNull(cache.get(key(0)), "a referenced entry gets a second chance");
        assertNull(cache.get(key(1)), "the oldest unreferenced entry goes first");
        assertEquals(10, cache.size());
    }

    @Test
    void concurrentWritersAndVersionChangesKeepTheBound() throws Exception {
        DecisionCache cache = cacheAt("v1", 500, 60_000);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<CompletableFuture<Void>> writers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int offset = t * 100_000;
                writers.add(CompletableFuture.runAsync(() -> {
                    for (int i = 0; i < 20_000; i++) {
                        Answer answer = TestContexts.answer(key(offset + i), true, cache.activeVersion());
                        cache.put(answer, cache.generation(), NOW);
                    }
                }, pool));
            }
            for (int v = 0; v < 50; v++) {
                cache.onPolicyVersion("v1");
            }
            CompletableFuture.allOf(writers.toArray(new CompletableFuture[0])).join();
        } finally {
            pool.shutdownNow();
        }
        assertTrue(cache.size() <= 500, "size " + cache.size());
        cache.put(TestContexts.answer(key(-1), true, "v1"), cache.generation(), NOW);
        assertTrue(cache.size() <= 500, "size " + cache.size());
        assertFalse(cache.get(key(-1)) == null);
    }

    @Test
    void craftedCollidingNamesAreLeftUncachedBeyondAShortChain() {
        // "Aa" and "BB" share String.hashCode, so every string of five such pairs has the same hash:
        // 32 names, one slot.
        List<String> names = new ArrayList<>(List.of(""));
        for (int round = 0; round < 5; round++) {
            List<String> longer = new ArrayList<>();
            for (String name : names) {
                longer.add(name + "Aa");
                longer.add(name + "BB");
            }
            names = longer;
        }
        DecisionCache cache = cacheAt("v1", 1000, 60_000);
        List<DecisionKey> keys = new ArrayList<>();
        for (String name : names) {
            DecisionKey key = DecisionKey.of("User", "alice", InetAddress.getLoopbackAddress(), "PLAINTEXT",
                SecurityProtocol.PLAINTEXT, "app", 0, AclOperation.READ, ResourceType.TOPIC, name, PatternType.LITERAL);
            keys.add(key);
            cache.put(TestContexts.answer(key, true, "v1"), cache.generation(), NOW);
        }
        assertEquals(1, keys.stream().mapToInt(DecisionKey::hashCode).distinct().count());
        assertEquals(8, cache.size(), "one chain holds at most 8 entries");
        assertNotNull(cache.get(keys.get(0)));
        assertNull(cache.get(keys.get(31)));
    }
}
