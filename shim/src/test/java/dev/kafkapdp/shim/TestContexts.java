package dev.kafkapdp.shim;

import java.net.InetAddress;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.function.BooleanSupplier;

import org.apache.kafka.common.ClusterResource;
import org.apache.kafka.common.Endpoint;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;
import org.apache.kafka.server.authorizer.AuthorizerServerInfo;

/** Small fixtures shared by the shim's tests. */
final class TestContexts {

    private TestContexts() {
    }

    /** A cached answer for {@code key} under {@code version}, with no determining policies. */
    static Answer answer(DecisionKey key, boolean allowed, String version) {
        return new Answer(key, allowed, version, List.of(), true, true);
    }

    record Ctx(KafkaPrincipal principal, InetAddress clientAddress, String listenerName,
               SecurityProtocol securityProtocol, String clientId, int requestType, int requestVersion,
               int correlationId) implements AuthorizableRequestContext {
    }

    record ServerInfo(Collection<Endpoint> endpoints, Endpoint interBrokerEndpoint,
                      Collection<String> earlyStartListeners) implements AuthorizerServerInfo {
        @Override
        public ClusterResource clusterResource() {
            return new ClusterResource("test-cluster");
        }

        @Override
        public int brokerId() {
            return 1;
        }
    }

    static Ctx ctx(String user) {
        return new Ctx(new KafkaPrincipal("User", user), InetAddress.getLoopbackAddress(), "CLIENT",
            SecurityProtocol.SASL_PLAINTEXT, "test-client", ApiKeys.PRODUCE.id, 9, 7);
    }

    static Action topic(AclOperation op, String name) {
        return new Action(op, new ResourcePattern(ResourceType.TOPIC, name, PatternType.LITERAL), 1, true, true);
    }

    static List<Action> topics(AclOperation op, String... names) {
        return java.util.Arrays.stream(names).map(n -> topic(op, n)).toList();
    }

    /** Polls until the condition holds or the deadline passes (never a fixed sleep). */
    static void await(String what, Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.onSpinWait();
            Thread.yield();
        }
    }
}
