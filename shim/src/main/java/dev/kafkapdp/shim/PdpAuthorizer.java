package dev.kafkapdp.shim;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

import org.apache.kafka.common.Endpoint;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.metrics.Monitorable;
import org.apache.kafka.common.metrics.PluginMetrics;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.server.authorizer.AclCreateResult;
import org.apache.kafka.server.authorizer.AclDeleteResult;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;
import org.apache.kafka.server.authorizer.AuthorizationResult;
import org.apache.kafka.server.authorizer.Authorizer;
import org.apache.kafka.server.authorizer.AuthorizerServerInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Kafka authorizer that hands every decision to the kafka-pdp policy decision point, where access is written as
 * Cedar policies kept in version control. Enable it with
 * {@code authorizer.class.name=dev.kafkapdp.shim.PdpAuthorizer}; the settings are the {@code *_CONFIG} constants of
 * {@link PdpConfig}.
 *
 * <p>Each method is thin: the work is done by one {@link Decider}, built from the configuration in
 * {@link #configure} and never changed afterwards.
 *
 * <p>Fail closed: whenever the PDP cannot give a decision in time (down, slow, erroring, or answering something
 * the shim does not understand) the action is denied and the denial is counted by reason.
 *
 * <p>Threading: Kafka calls {@link #authorize} on its request-handler threads; a cached decision is answered
 * without leaving the JVM, and a miss waits at most {@code kafka.pdp.deadline.ms} for one batched round trip.
 */
public class PdpAuthorizer implements Authorizer, Monitorable {

    private static final Logger LOG = LoggerFactory.getLogger(PdpAuthorizer.class);

    /** Why ACLs cannot be written here; sent back to {@code kafka-acls --add} and {@code --remove}. */
    static final String ACLS_READ_ONLY_MESSAGE = "ACLs are not used on this cluster: access is managed as Cedar "
        + "policies in version control and decided by kafka-pdp. Change the policies by pull request instead.";

    private volatile Decider decider;
    private PluginMetrics pluginMetrics;

    @Override
    public synchronized void configure(Map<String, ?> configs) {
        PdpConfig config = PdpConfig.parse(configs);
        Decider fresh = new Decider(config);
        Decider previous = decider;
        decider = fresh;
        if (previous != null) {
            previous.close();
        }
        if (pluginMetrics != null) {
            fresh.registerMetrics(pluginMetrics);
        }
        fresh.connect();
        LOG.info("kafka-pdp authorizer configured: {}", config);
    }

    @Override
    public synchronized void withPluginMetrics(PluginMetrics metrics) {
        pluginMetrics = metrics;
        Decider current = decider;
        if (current != null) {
            current.registerMetrics(metrics);
        }
    }

    /**
     * Controller listeners, the inter-broker listener and {@code early.start.listeners} start at once, so that a
     * KRaft controller and the brokers' own traffic never wait for the PDP. Client listeners start once the PDP has
     * reported its policy version, or fail after {@code kafka.pdp.start.timeout.ms}.
     */
    @Override
    public Map<Endpoint, ? extends CompletionStage<Void>> start(AuthorizerServerInfo serverInfo) {
        Decider current = configured();
        Set<String> early = new HashSet<>(serverInfo.earlyStartListeners());
        interBrokerListener(serverInfo).ifPresent(early::add);
        CompletableFuture<Void> pdpReady = null;
        Map<Endpoint, CompletableFuture<Void>> futures = new HashMap<>();
        for (Endpoint endpoint : serverInfo.endpoints()) {
            if (early.contains(endpoint.listenerName().orElse(""))) {
                futures.put(endpoint, CompletableFuture.completedFuture(null));
                continue;
            }
            if (pdpReady == null) {
                pdpReady = current.whenPdpReady();
            }
            futures.put(endpoint, pdpReady);
        }
        return futures;
    }

    private static Optional<String> interBrokerListener(AuthorizerServerInfo serverInfo) {
        try {
            Endpoint interBroker = serverInfo.interBrokerEndpoint();
            return interBroker == null ? Optional.empty() : interBroker.listenerName();
        } catch (RuntimeException e) {
            return Optional.empty(); // a controller-only node may have none; its listeners are early-start anyway
        }
    }

    @Override
    public List<AuthorizationResult> authorize(AuthorizableRequestContext requestContext, List<Action> actions) {
        Decider current = decider;
        if (current == null) {
            // Not configured, or closed while a request was in flight: fail closed.
            return Collections.nCopies(actions.size(), AuthorizationResult.DENIED);
        }
        return current.authorize(requestContext, actions);
    }

    /**
     * Asks the PDP whether the principal may perform the operation on at least one resource of the type; Kafka
     * asks this for idempotent and transactional producers.
     */
    @Override
    public AuthorizationResult authorizeByResourceType(AuthorizableRequestContext requestContext, AclOperation op,
                                                       ResourceType resourceType) {
        Decider current = decider;
        return current == null ? AuthorizationResult.DENIED
            : current.authorizeByResourceType(requestContext, op, resourceType);
    }

    /**
     * A read-only view for {@code kafka-acls --list}: one informational entry, on a cluster resource named with
     * the message itself, saying that access is managed as Cedar policies and where to ask. It grants nothing
     * (the resource name is not the cluster's) and is returned only to filters that match it.
     */
    @Override
    public Iterable<AclBinding> acls(AclBindingFilter filter) {
        AclBinding note = informationalBinding(configured());
        LOG.info("ACLs were listed; none exist here. {}", note.pattern().name());
        return filter.matches(note) ? List.of(note) : List.of();
    }

    static AclBinding informationalBinding(Decider decider) {
        PolicyState policy = decider.policy();
        String version = policy.known() ? policy.version() : "unknown (PDP not reachable)";
        String text = "kafka-pdp: access is managed as Cedar policies in version control, not as ACLs; decisions "
            + "come from the PDP at " + decider.config().endpoints() + ", active policy version " + version;
        return new AclBinding(new ResourcePattern(ResourceType.CLUSTER, text, PatternType.LITERAL),
            new AccessControlEntry("User:*", "*", AclOperation.ALL, AclPermissionType.DENY));
    }

    @Override
    public List<? extends CompletionStage<AclCreateResult>> createAcls(AuthorizableRequestContext requestContext,
                                                                      List<AclBinding> aclBindings) {
        LOG.info("refused to create {} ACL(s) for {}: access is managed as Cedar policies", aclBindings.size(),
            requestContext.principal());
        List<CompletableFuture<AclCreateResult>> results = new ArrayList<>(aclBindings.size());
        for (int i = 0; i < aclBindings.size(); i++) {
            results.add(CompletableFuture.completedFuture(
                new AclCreateResult(new InvalidRequestException(ACLS_READ_ONLY_MESSAGE))));
        }
        return results;
    }

    @Override
    public List<? extends CompletionStage<AclDeleteResult>> deleteAcls(AuthorizableRequestContext requestContext,
                                                                      List<AclBindingFilter> aclBindingFilters) {
        LOG.info("refused to delete ACLs matching {} filter(s) for {}: access is managed as Cedar policies",
            aclBindingFilters.size(), requestContext.principal());
        List<CompletableFuture<AclDeleteResult>> results = new ArrayList<>(aclBindingFilters.size());
        for (int i = 0; i < aclBindingFilters.size(); i++) {
            results.add(CompletableFuture.completedFuture(
                new AclDeleteResult(new InvalidRequestException(ACLS_READ_ONLY_MESSAGE))));
        }
        return results;
    }

    @Override
    public synchronized void close() {
        Decider current = decider;
        decider = null;
        if (current != null) {
            current.close();
        }
    }

    /** The decider; visible to tests and benchmarks in this package. */
    Decider decider() {
        return decider;
    }

    private Decider configured() {
        Decider current = decider;
        if (current == null) {
            throw new IllegalStateException("PdpAuthorizer is not configured (or already closed)");
        }
        return current;
    }
}
