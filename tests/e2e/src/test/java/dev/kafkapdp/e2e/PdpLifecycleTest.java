package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.BROKER;
import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_WRITER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kafkapdp.e2e.harness.BrokerProcess;
import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.E2eEnvironment;
import dev.kafkapdp.e2e.harness.Listener;
import dev.kafkapdp.e2e.harness.PdpProcess;
import dev.kafkapdp.e2e.harness.Poll;
import dev.kafkapdp.e2e.harness.PolicyDir;
import dev.kafkapdp.e2e.harness.Ports;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The PDP's comings and goings around a broker of its own, configured with two PDP replicas
 * ({@code kafka.pdp.endpoints=A,B}) and started while neither runs. The shared broker cannot serve here: it must
 * start with its PDP up, and the other tests rely on its single PDP.
 *
 * <p>The methods run in order, since the first one's subject, a broker starting without any PDP, happens once.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class PdpLifecycleTest {

    private static final Duration CLIENT_LISTENER_DEADLINE = Duration.ofSeconds(60);
    private static final Duration FAILOVER_DEADLINE = Duration.ofSeconds(10);
    /** Uncached requests that must all be allowed once the surviving replica has taken over. */
    private static final int REQUESTS_ON_ONE_REPLICA = 20;
    /** Above the PDP's own shutdown grace (5 s), after which it stops whatever its clients do. */
    private static final Duration STOP_GRACE = Duration.ofSeconds(10);

    private static PolicyDir policies;
    private static BrokerProcess broker;

    /** Prints this class's broker and PDP logs under a failed test; the shared cluster's extension has others. */
    @RegisterExtension
    static final TestWatcher LOGS_ON_FAILURE = new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            if (broker != null) {
                System.out.println("===== " + context.getDisplayName() + " failed; broker log follows =====");
                System.out.println(broker.logTail(80));
            }
            for (PdpProcess pdp : new PdpProcess[] {pdpA, pdpB}) {
                if (pdp != null) {
                    System.out.println(pdp.logTail(30));
                }
            }
        }
    };
    private static String replicaA;
    private static String replicaB;
    private static PdpProcess pdpA;
    private static PdpProcess pdpB;

    @BeforeAll
    static void startBrokerWithoutAnyPdp() {
        E2eEnvironment.pdpBinary();
        replicaA = "127.0.0.1:" + Ports.free();
        replicaB = "127.0.0.1:" + Ports.free();
        Map<String, String> shimConfig = Map.of(
                "kafka.pdp.endpoints", replicaA + "," + replicaB,
                "kafka.pdp.deadline.ms", Integer.toString(E2eCluster.PDP_DEADLINE_MS),
                // Long enough that the broker is still waiting when the first PDP comes up.
                "kafka.pdp.start.timeout.ms", "180000");
        policies = PolicyDir.create();
        broker = BrokerProcess.startWithoutClients(new BrokerProcess.Settings("lifecycle-broker",
                E2eCluster.SHIM_AUTHORIZER, shimConfig, List.of(E2eEnvironment.shimJar()), BROKER,
                List.of(LAB_WRITER)));
    }

    @AfterAll
    static void stopAll() {
        for (AutoCloseable closeable : new AutoCloseable[] {broker, pdpA, pdpB, policies}) {
            try {
                if (closeable != null) {
                    closeable.close();
                }
            } catch (Exception e) {
                System.out.println("cannot stop " + closeable + ": " + e);
            }
        }
    }

    @Test
    @Order(1)
    void controllerAndInterBrokerListenerStartWithoutAnyPdpAndClientListenersOpenOnceOneAnswers()
            throws Exception {
        String topic = Clients.unique("e2e.labs.late-");
        // The controller took a topic creation from the super user over the inter-broker listener.
        try (Admin superAdmin = broker.superAdmin()) {
            Clients.createTopics(superAdmin, topic);
        }
        try (Admin client = Admin.create(quick(broker.clientConfig(LAB_WRITER, Listener.CLIENT)))) {
            ExecutionException closed = assertThrows(ExecutionException.class,
                    () -> client.describeCluster().nodes().get(15, TimeUnit.SECONDS),
                    "the client listener must not serve before a PDP is reachable");
            assertInstanceOf(TimeoutException.class, closed.getCause());
        }

        pdpA = PdpProcess.start(E2eEnvironment.pdpBinary(), policies.root(), replicaA, "lifecycle-pdp-a");
        broker.awaitListener(Listener.CLIENT, LAB_WRITER, CLIENT_LISTENER_DEADLINE);
        try (Admin writer = Admin.create(broker.clientConfig(LAB_WRITER, Listener.CLIENT))) {
            assertEquals(List.of(topic), List.copyOf(writer.describeTopics(List.of(topic)).allTopicNames()
                    .get(30, TimeUnit.SECONDS).keySet()));
        }
    }

    @Test
    @Order(2)
    void requestsRideThroughTheLossOfEitherReplica() throws Exception {
        if (pdpA == null || !pdpA.isAlive()) {
            pdpA = PdpProcess.start(E2eEnvironment.pdpBinary(), policies.root(), replicaA, "lifecycle-pdp-a");
        }
        pdpB = PdpProcess.start(E2eEnvironment.pdpBinary(), policies.root(), replicaB, "lifecycle-pdp-b");
        broker.awaitListener(Listener.CLIENT, LAB_WRITER, CLIENT_LISTENER_DEADLINE);

        try (Admin writer = Admin.create(quick(broker.clientConfig(LAB_WRITER, Listener.CLIENT)))) {
            assertServedByTheOther(writer, pdpA, "A", true);
            pdpA.restart();
            assertServedByTheOther(writer, pdpB, "B", true);
            pdpB.restart();
            assertServedByTheOther(writer, pdpA, "A", false);
            pdpA.restart();
        }
    }

    /**
     * Takes one replica down; the other must take over within the failover deadline and then answer every
     * uncached request: a topic name never asked about, under the writer's prefix, is allowed (the broker then
     * reports it unknown) rather than denied.
     */
    private static void assertServedByTheOther(Admin writer, PdpProcess victim, String name, boolean crash)
            throws Exception {
        String which = takeDown(victim, name, crash);
        // A request routed to a replica in the moment it goes away (killed or stopped) is retried by the shim on
        // the other one within the same deadline, so the take-over must cost no denial at all.
        AtomicInteger transientDenials = new AtomicInteger();
        Duration tookOver = Poll.until("the other replica to answer with replica " + which + " down",
                FAILOVER_DEADLINE, () -> {
                    boolean allowed = allowed(writer, Clients.unique("e2e.labs.failover-"));
                    if (!allowed) {
                        transientDenials.incrementAndGet();
                    }
                    return allowed;
                });
        System.out.printf("with replica %s, the other answered after %d ms; %d request(s) denied meanwhile%n",
                which, tookOver.toMillis(), transientDenials.get());
        assertEquals(0, transientDenials.get(), "requests denied while replica " + which
                + " went down, though the other replica could have answered them");

        for (int i = 0; i < REQUESTS_ON_ONE_REPLICA; i++) {
            assertTrue(allowed(writer, Clients.unique("e2e.labs.failover-")),
                    "request " + i + " was denied with replica " + which + " down and the other up");
        }
    }

    /** Kills (SIGKILL) or stops (SIGTERM) a replica; returns its name with how it went down. */
    private static String takeDown(PdpProcess victim, String name, boolean crash) {
        if (crash) {
            victim.kill();
            return name + " (killed)";
        }
        // Beside a broker the shim always holds a WatchPolicyVersion stream open; the PDP must still stop on
        // SIGTERM, or every orderly restart would end in SIGKILL after the orchestrator's grace period.
        assertTrue(victim.stop(STOP_GRACE), "replica " + name + " did not exit within "
                + STOP_GRACE.toSeconds() + " s of SIGTERM with a shim's policy-version stream open");
        return name + " (stopped)";
    }

    /** True if the broker let the writer describe the (nonexistent) topic, false on an authorization error. */
    private static boolean allowed(Admin writer, String missingTopic) throws Exception {
        try {
            writer.describeTopics(List.of(missingTopic)).allTopicNames().get(15, TimeUnit.SECONDS);
            throw new AssertionError(missingTopic + " was never created, yet it was described");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TopicAuthorizationException) {
                return false;
            }
            assertInstanceOf(UnknownTopicOrPartitionException.class, e.getCause());
            return true;
        }
    }

    private static Map<String, Object> quick(Map<String, Object> config) {
        Map<String, Object> quick = new HashMap<>(config);
        quick.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, 3_000);
        quick.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, 5_000);
        return quick;
    }
}
