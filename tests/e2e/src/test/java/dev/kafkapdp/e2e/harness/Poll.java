package dev.kafkapdp.e2e.harness;

import java.time.Duration;
import java.util.concurrent.Callable;

/**
 * Waiting for a condition with a deadline: the suite never sleeps a fixed time to let something happen.
 */
public final class Poll {

    private static final Duration PAUSE = Duration.ofMillis(20);

    private Poll() {
    }

    /**
     * Calls {@code probe} until it returns true or the deadline passes. An exception thrown by the probe counts
     * as "not yet" and is kept, so that a timeout can say what the last attempt saw.
     *
     * @return how long it took until the probe said yes
     * @throws AssertionError when the deadline passes first, naming {@code what}
     */
    public static Duration until(String what, Duration deadline, Callable<Boolean> probe) {
        long start = System.nanoTime();
        long end = start + deadline.toNanos();
        Throwable lastFailure = null;
        while (true) {
            try {
                if (probe.call()) {
                    return Duration.ofNanos(System.nanoTime() - start);
                }
                lastFailure = null;
            } catch (Exception e) {
                lastFailure = e;
            }
            if (System.nanoTime() > end) {
                AssertionError timeout = new AssertionError("timed out after " + deadline.toMillis()
                        + " ms waiting for " + what);
                if (lastFailure != null) {
                    timeout.initCause(lastFailure);
                }
                throw timeout;
            }
            pause();
        }
    }

    private static void pause() {
        try {
            Thread.sleep(PAUSE.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while polling", e);
        }
    }
}
