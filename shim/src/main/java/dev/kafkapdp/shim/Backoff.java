package dev.kafkapdp.shim;

import java.util.concurrent.ThreadLocalRandom;

/**
 * Exponential backoff with jitter for reopening the policy-version stream: the delay doubles from {@code initialMs}
 * up to {@code maxMs}, each delay drawn from its upper half so that many brokers do not reconnect in step.
 */
final class Backoff {
    private final long initialMs;
    private final long maxMs;
    private long currentMs;

    Backoff(long initialMs, long maxMs) {
        this.initialMs = initialMs;
        this.maxMs = maxMs;
        this.currentMs = initialMs;
    }

    /** The delay before the next attempt, in milliseconds; doubles the following one. */
    synchronized long next() {
        long ceiling = currentMs;
        currentMs = Math.min(maxMs, currentMs * 2);
        long floor = ceiling / 2;
        return floor + ThreadLocalRandom.current().nextLong(ceiling - floor + 1);
    }

    /** Starts over from the initial delay, after a success. */
    synchronized void reset() {
        currentMs = initialMs;
    }
}
