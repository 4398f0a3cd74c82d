package dev.kafkapdp.e2e.harness;

import java.util.Optional;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * JUnit 5 extension that starts the {@link E2eCluster} once for every test class that uses it, hands it to
 * test methods and {@code @BeforeAll} methods as a parameter, stops it when the run ends, and prints the tails
 * of the broker's and the PDP's logs under every failed test.
 *
 * <p>A failed start is remembered, so that the next class fails at once with the same cause instead of trying
 * for another two minutes.
 */
public final class SharedCluster implements BeforeAllCallback, ParameterResolver, TestWatcher {

    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(SharedCluster.class);

    @Override
    public void beforeAll(ExtensionContext context) {
        cluster(context);
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == E2eCluster.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        return cluster(context);
    }

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        Started started = context.getRoot().getStore(NAMESPACE).get(Started.class, Started.class);
        if (started != null && started.cluster != null) {
            System.out.println("===== " + context.getDisplayName() + " failed; broker and PDP logs follow =====");
            System.out.println(started.cluster.logTails());
        }
    }

    private static E2eCluster cluster(ExtensionContext context) {
        Started started = context.getRoot().getStore(NAMESPACE)
                .getOrComputeIfAbsent(Started.class, key -> Started.attempt(), Started.class);
        if (started.failure != null) {
            throw new IllegalStateException("the shared broker and PDP did not start", started.failure);
        }
        return started.cluster;
    }

    /** The outcome of the one start attempt; closed by JUnit when the root context ends. */
    private static final class Started implements ExtensionContext.Store.CloseableResource {
        private final E2eCluster cluster;
        private final Throwable failure;

        private Started(E2eCluster cluster, Throwable failure) {
            this.cluster = cluster;
            this.failure = failure;
        }

        static Started attempt() {
            try {
                return new Started(E2eCluster.start(), null);
            } catch (RuntimeException | AssertionError e) {
                return new Started(null, e);
            }
        }

        @Override
        public void close() {
            Optional.ofNullable(cluster).ifPresent(E2eCluster::close);
        }
    }
}
