package dev.kafkapdp.e2e.harness;

import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;

/**
 * The suite's one broker and one PDP: the real {@code kafka-pdp} binary serving the test policies, and a Kafka
 * 4.4 broker whose authorizer is the shim, pointed at that PDP. Started once for all test classes (see
 * {@link SharedCluster}) and stopped when the test JVM is done with them.
 *
 * <p>The users are made-up service principals; their roles come from {@code bindings.entities.json} and the
 * policies from the {@code .cedar} files next to it.
 */
public final class E2eCluster implements AutoCloseable {

    /** Class name of the shim, as brokers configure it. */
    public static final String SHIM_AUTHORIZER = "dev.kafkapdp.shim.PdpAuthorizer";

    /**
     * How long the shim waits for the PDP per request; a broker thread never waits longer. Above the shim's
     * default of 100 ms for margin: the suite runs a debug build of the PDP on a shared 2-core machine, and a
     * decision that misses the deadline is a fail-closed DENY, which would fail a test that expects an ALLOW.
     * The suite passed at 100 ms with a load average of 8 too.
     */
    public static final int PDP_DEADLINE_MS = 250;

    /** The inter-broker and controller principal, {@code super.users}; answered by the shim without the PDP. */
    public static final TestUser BROKER = TestUser.named("broker");
    /** Role {@code lab-producer}: writes {@code e2e.labs.*}, transactions under {@code labs-tx-*}. */
    public static final TestUser LAB_WRITER = TestUser.named("lab-results-writer");
    /** Role {@code lab-consumer}: reads {@code e2e.labs.*}; groups {@code labs-readers.*} through a link. */
    public static final TestUser LAB_READER = TestUser.named("lab-results-reader");
    /** Role {@code platform-admin}: creates and configures {@code e2e.*} topics, manages the cluster. */
    public static final TestUser PLATFORM_ADMIN = TestUser.named("platform-admin");
    /** Role {@code auditor}: reads configuration, nothing else. */
    public static final TestUser AUDITOR = TestUser.named("compliance-auditor");
    /** Role {@code tls-pipeline}: reads and writes {@code e2e.secure.*}, only over SASL_SSL. */
    public static final TestUser SECURE_PIPELINE = TestUser.named("secure-pipeline");
    /** Bound without roles; the policy-reload test grants and revokes its access on the fly. */
    public static final TestUser RELOAD_PROBE = TestUser.named("reload-probe");
    /** Not bound at all: every request of it is denied. */
    public static final TestUser BILLING = TestUser.named("billing-svc");

    private static final List<TestUser> CLIENT_USERS =
            List.of(LAB_WRITER, LAB_READER, PLATFORM_ADMIN, AUDITOR, SECURE_PIPELINE, RELOAD_PROBE, BILLING);

    private final PolicyDir policies;
    private final PdpProcess pdp;
    private final BrokerProcess broker;

    private E2eCluster(PolicyDir policies, PdpProcess pdp, BrokerProcess broker) {
        this.policies = policies;
        this.pdp = pdp;
        this.broker = broker;
    }

    /** Starts the PDP, then the broker with the shim; both are checked for before anything starts. */
    public static E2eCluster start() {
        var pdpBinary = E2eEnvironment.pdpBinary();
        var shimJar = E2eEnvironment.shimJar();
        PolicyDir policies = PolicyDir.create();
        PdpProcess pdp = null;
        try {
            pdp = PdpProcess.start(pdpBinary, policies.root());
            Map<String, String> shimConfig = Map.of(
                    "kafka.pdp.endpoints", pdp.endpoint(),
                    "kafka.pdp.deadline.ms", Integer.toString(PDP_DEADLINE_MS),
                    "kafka.pdp.start.timeout.ms", "60000");
            BrokerProcess broker = BrokerProcess.start(new BrokerProcess.Settings("shim-broker", SHIM_AUTHORIZER,
                    shimConfig, List.of(shimJar), BROKER, CLIENT_USERS));
            return new E2eCluster(policies, pdp, broker);
        } catch (RuntimeException | Error e) {
            if (pdp != null) {
                pdp.close();
            }
            policies.close();
            throw e;
        }
    }

    public BrokerProcess broker() {
        return broker;
    }

    public PdpProcess pdp() {
        return pdp;
    }

    public PolicyDir policies() {
        return policies;
    }

    /** Client settings for {@code user} on {@code listener}. */
    public Map<String, Object> clientConfig(TestUser user, Listener listener) {
        return broker.clientConfig(user, listener);
    }

    /** Client settings for {@code user} on the SASL_PLAINTEXT client listener. */
    public Map<String, Object> clientConfig(TestUser user) {
        return broker.clientConfig(user, Listener.CLIENT);
    }

    /** An admin client for {@code user} on the SASL_PLAINTEXT client listener. */
    public Admin admin(TestUser user) {
        return Admin.create(clientConfig(user));
    }

    /** An admin client for the super user, for setting up and checking test state. */
    public Admin superAdmin() {
        return broker.superAdmin();
    }

    /** Broker and PDP log tails, for a failure message. */
    public String logTails() {
        return broker.logTail(80) + pdp.logTail(40);
    }

    @Override
    public void close() {
        try {
            broker.close();
        } finally {
            try {
                pdp.close();
            } finally {
                policies.close();
            }
        }
    }
}
