package dev.kafkapdp.shim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Property: whatever the order of stores, version changes, stream losses and lookups, the cache never answers with
 * a decision that was not stored under the active version since it became active, and never holds more than its
 * bound. Checked against a plain map as the model, over random operation sequences with fixed seeds.
 */
class DecisionCachePropertyTest {

    private static final int KEYS = 40;
    private static final int MAX = 16;
    private static final long NOW = 5_000_000_000L;

    private static DecisionKey key(int i) {
        return DecisionKey.of("User", "u" + (i % 4), InetAddress.getLoopbackAddress(), "CLIENT",
            SecurityProtocol.SASL_SSL, "c", 0, AclOperation.READ, ResourceType.TOPIC, "t" + i, PatternType.LITERAL);
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 42, 1234, 99_999})
    void neverAnswersAcrossVersionsNorBeyondTheBound(long seed) {
        Random random = new Random(seed);
        DecisionCache cache = new DecisionCache(MAX, 60_000);
        cache.tick(NOW, 0);
        Map<Integer, Boolean> model = new HashMap<>(); // decisions stored under the active version
        String active = null;
        int versions = 0;
        for (int step = 0; step < 20_000; step++) {
            int op = random.nextInt(100);
            int k = random.nextInt(KEYS);
            if (op < 3) {
                active = "v" + (++versions);
                cache.onPolicyVersion(active);
                model.clear();
            } else if (op < 5) {
                active = null;
                cache.onVersionUnknown();
                model.clear();
            } else if (op < 45) {
                boolean allowed = random.nextBoolean();
                // A decision may come back under an older version than the active one (a replica lagging behind).
                String version = random.nextInt(4) == 0 ? "v" + random.nextInt(versions + 1) : active;
                long generation = cache.generation();
                cache.put(TestContexts.answer(key(k), allowed, version), generation, NOW);
                if (active != null && active.equals(version)) {
                    model.put(k, allowed);
                }
            } else {
                Answer hit = cache.get(key(k));
                if (hit != null) {
                    assertTrue(model.containsKey(k), "seed " + seed + " step " + step + ": answered an unstored key");
                    assertEquals(model.get(k), hit.allowed,
                        "seed " + seed + " step " + step + ": stale decision");
                }
            }
            assertTrue(cache.size() <= MAX, "seed " + seed + " step " + step + ": size " + cache.size());
        }
    }
}
