package dev.kafkapdp.shim;

import static org.apache.kafka.server.authorizer.AuthorizationResult.ALLOWED;
import static org.apache.kafka.server.authorizer.AuthorizationResult.DENIED;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.metrics.PluginMetrics;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;
import org.apache.kafka.server.authorizer.AuthorizationResult;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.kafkapdp.proto.v1.ActionResult;
import dev.kafkapdp.proto.v1.AuthorizeByResourceTypeRequest;
import dev.kafkapdp.proto.v1.AuthorizeByResourceTypeResponse;
import dev.kafkapdp.proto.v1.AuthorizeRequest;
import dev.kafkapdp.proto.v1.AuthorizeResponse;
import dev.kafkapdp.proto.v1.Decision;
import dev.kafkapdp.proto.v1.Operation;
import dev.kafkapdp.proto.v1.PatternType;
import dev.kafkapdp.proto.v1.PolicyVersion;
import dev.kafkapdp.proto.v1.Principal;
import dev.kafkapdp.proto.v1.RequestContext;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * Everything {@link PdpAuthorizer} decides with, built from one {@link PdpConfig} and never reconfigured: the PDP
 * client, the decision cache, the counters and the policy version last reported.
 *
 * <p>Threading: {@link #authorize} and {@link #authorizeByResourceType} run on Kafka's request-handler threads,
 * many at once, and never wait longer than {@code kafka.pdp.deadline.ms}. The version stream calls back on a gRPC
 * thread; reconnects and start timeouts run on one scheduler thread owned here.
 */
final class Decider implements PdpClient.VersionListener, AutoCloseable {

    /** Kafka's authorizer audit logger: brokers route it to {@code kafka-authorizer.log}. */
    private static final Logger AUDIT = LoggerFactory.getLogger("kafka.authorizer.logger");
    private static final Logger LOG = LoggerFactory.getLogger(PdpAuthorizer.class);
    /** At most one warning per this many nanoseconds about a failing PDP, so an outage does not flood the log. */
    private static final long WARN_EVERY_NANOS = TimeUnit.SECONDS.toNanos(10);
    private static final List<AuthorizationResult> ONLY_ALLOWED = List.of(ALLOWED);
    private static final List<AuthorizationResult> ONLY_DENIED = List.of(DENIED);

    private final PdpConfig config;
    private final DecisionCache cache;
    private final ShimMetrics metrics = new ShimMetrics();
    private final ScheduledExecutorService scheduler;
    private final PdpClient client;
    private final AuditReporter audit;
    /** Super users' answers by key, so that their ALLOWs fold; emptied of reported ones after each report. */
    private final ConcurrentHashMap<DecisionKey, Answer> superUserAnswers = new ConcurrentHashMap<>();
    private final ScheduledExecutorService auditThread;
    /** Kafka's authorizer log at debug (where ALLOWs go), read once per cache tick rather than on every hit. */
    private volatile boolean logAllows = AUDIT.isDebugEnabled();
    private final CompletableFuture<Void> firstVersion = new CompletableFuture<>();
    private final AtomicLong lastWarnNanos = new AtomicLong(System.nanoTime() - WARN_EVERY_NANOS);
    private volatile PolicyState policy = PolicyState.UNKNOWN;

    Decider(PdpConfig config) {
        this.config = config;
        this.cache = new DecisionCache(config.cacheMaxEntries(), config.cacheTtlMs());
        this.scheduler = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "kafka-pdp-shim-scheduler");
            thread.setDaemon(true);
            return thread;
        });
        try {
            this.client = new PdpClient(config, scheduler);
        } catch (RuntimeException e) {
            scheduler.shutdownNow();
            throw e;
        }
        scheduler.scheduleAtFixedRate(this::tick, DecisionCache.TICK_MILLIS, DecisionCache.TICK_MILLIS,
            TimeUnit.MILLISECONDS);
        this.audit = new AuditReporter(config, metrics,
            request -> client.reportCachedDecisions(request, AuditReporter.REPORT_DEADLINE_MS));
        metrics.collectHitsWith(audit::collect);
        this.auditThread = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "kafka-pdp-shim-audit");
            thread.setDaemon(true);
            return thread;
        });
        auditThread.scheduleWithFixedDelay(this::reportCacheAnswers, config.auditReportIntervalMs(),
            config.auditReportIntervalMs(), TimeUnit.MILLISECONDS);
    }

    private void tick() {
        cache.tick(System.nanoTime(), System.currentTimeMillis());
        logAllows = AUDIT.isDebugEnabled();
    }

    private void reportCacheAnswers() {
        try {
            audit.report();
            // An answer hit after this still gets reported: a hit on an idle answer queues the answer itself.
            superUserAnswers.values().removeIf(Answer::idle);
        } catch (RuntimeException e) {
            // An exception would cancel the schedule; the records stay held for the next round.
            warnRateLimited("reporting cache answers to the PDP failed inside the shim", e);
        }
    }

    /** Opens the policy-version stream; decisions are cached only while it is up. */
    void connect() {
        client.watch(this);
    }

    PdpConfig config() {
        return config;
    }

    PolicyState policy() {
        return policy;
    }

    ShimMetrics metrics() {
        return metrics;
    }

    DecisionCache cache() {
        return cache;
    }

    AuditReporter audit() {
        return audit;
    }

    void registerMetrics(PluginMetrics pluginMetrics) {
        metrics.register(pluginMetrics, cache, audit, this::policy);
    }

    /**
     * A future that completes once the PDP has reported its policy version, or fails after
     * {@code kafka.pdp.start.timeout.ms}.
     */
    CompletableFuture<Void> whenPdpReady() {
        CompletableFuture<Void> ready = new CompletableFuture<>();
        firstVersion.whenComplete((ok, error) -> {
            if (error == null) {
                ready.complete(null);
            } else {
                ready.completeExceptionally(error);
            }
        });
        scheduler.schedule(() -> ready.completeExceptionally(new TimeoutException(
            "no policy version from the PDP at " + config.endpoints() + " within " + config.startTimeoutMs()
                + " ms (" + PdpConfig.START_TIMEOUT_MS_CONFIG + "); client listeners cannot start")),
            config.startTimeoutMs(), TimeUnit.MILLISECONDS);
        return ready;
    }

    // === the version stream ===

    @Override
    public void onPolicyVersion(PolicyVersion version) {
        if (version.getVersion().isEmpty()) {
            onStreamLost(Status.INTERNAL.withDescription("the PDP reported an empty policy version"));
            return;
        }
        // The cache is dropped before the new version is published, so nothing that sees it can get an old answer.
        cache.onPolicyVersion(version.getVersion());
        if (!policy.version().equals(version.getVersion())) {
            metrics.policyVersionChanges.increment();
            LOG.info("policy version {} is active; cached decisions dropped", version.getVersion());
        }
        policy = new PolicyState(version.getVersion(), version.getActivatedAtUnixMs());
        firstVersion.complete(null);
    }

    @Override
    public void onStreamLost(Status status) {
        cache.onVersionUnknown();
        policy = PolicyState.UNKNOWN;
    }

    // === decisions ===

    /**
     * Decides every action of one request. A single action found in the cache (the steady state of Fetch and
     * Produce) takes a fast path that allocates nothing; everything else goes through {@link #decideAll}.
     */
    List<AuthorizationResult> authorize(AuthorizableRequestContext ctx, List<Action> actions) {
        if (actions.size() == 1) {
            List<AuthorizationResult> cached = cachedSingle(ctx, actions.get(0));
            if (cached != null) {
                return cached;
            }
        }
        return decideAll(ctx, actions);
    }

    /**
     * The cached answer for a one-action request, or {@code null} to take the general path. Super users need no
     * check here: their answers are never stored, so they never hit.
     */
    private List<AuthorizationResult> cachedSingle(AuthorizableRequestContext ctx, Action action) {
        try {
            Answer hit = cache.get(ctx, DecisionKey.contextHash(ctx), action);
            if (hit == null || !audit.hit(hit, cache.clockMillis())) {
                return null;
            }
            if (hit.allowed) {
                if (logAllows && action.logIfAllowed()) {
                    AUDIT.debug("ALLOW {} source=cache", describe(ctx, action));
                }
                return ONLY_ALLOWED;
            }
            if (action.logIfDenied() && AUDIT.isInfoEnabled()) {
                AUDIT.info("DENY {} source=cache", describe(ctx, action));
            }
            return ONLY_DENIED;
        } catch (RuntimeException e) {
            return null; // the general path decides again and fails closed if it must
        }
    }

    private List<AuthorizationResult> decideAll(AuthorizableRequestContext ctx, List<Action> actions) {
        AuthorizationResult[] results = new AuthorizationResult[actions.size()];
        boolean[] fromCache = new boolean[results.length];
        try {
            if (config.isSuperUser(ctx.principal())) {
                Arrays.fill(results, ALLOWED);
                tallySuperUser(ctx, actions);
            } else {
                decide(ctx, actions, results, fromCache);
            }
        } catch (RuntimeException e) {
            // INVARIANT: nothing escapes as an ALLOW; an unexpected failure denies whatever was not yet decided.
            int undecided = fillUndecided(results);
            metrics.failClosed(ShimMetrics.FailReason.INTERNAL_ERROR, undecided);
            warnRateLimited("authorization failed inside the shim; denying", e);
        }
        tallyAndAudit(ctx, actions, results, fromCache);
        return Arrays.asList(results);
    }

    private void decide(AuthorizableRequestContext ctx, List<Action> actions, AuthorizationResult[] results,
                        boolean[] fromCache) {
        int contextHash = DecisionKey.contextHash(ctx);
        DecisionKey[] missed = null;
        int misses = 0;
        for (int i = 0; i < results.length; i++) {
            Action action = actions.get(i);
            Answer hit = cache.get(ctx, contextHash, action);
            if (hit != null && audit.hit(hit, cache.clockMillis())) {
                results[i] = hit.allowed ? ALLOWED : DENIED;
                fromCache[i] = true;
                continue;
            }
            if (missed == null) {
                missed = new DecisionKey[results.length];
            }
            missed[i] = DecisionKey.of(ctx, contextHash, action);
            misses++;
        }
        if (misses > 0) {
            metrics.cacheMisses.add(misses);
            askPdp(ctx, actions, missed, results, System.nanoTime());
        }
    }

    /**
     * Tallies a super user's ALLOWs for the audit trail, one answer per distinct key, folded like cache hits. The
     * answers live in {@link #superUserAnswers} until the reporter has taken their tallies.
     */
    private void tallySuperUser(AuthorizableRequestContext ctx, List<Action> actions) {
        int contextHash = DecisionKey.contextHash(ctx);
        long now = cache.clockMillis();
        for (Action action : actions) {
            if (toProto(action) == null) {
                metrics.auditUnrecorded.increment(); // ANY, ALL or UNKNOWN: nothing the trail can name
                continue;
            }
            DecisionKey key = DecisionKey.of(ctx, contextHash, action);
            Answer answer = superUserAnswers.get(key);
            if (answer == null) {
                if (superUserAnswers.size() >= config.auditBufferMaxRecords()) {
                    metrics.auditUnrecorded.increment();
                    continue;
                }
                answer = superUserAnswers.computeIfAbsent(key,
                    k -> Answer.superUser(k, action.logIfAllowed(), action.logIfDenied()));
            }
            audit.superUserHit(answer, now);
        }
    }

    /** Sends every cache miss of one call in one batch and fills in their results. */
    private void askPdp(AuthorizableRequestContext ctx, List<Action> actions, DecisionKey[] missed,
                        AuthorizationResult[] results, long sentAtNanos) {
        AuthorizeRequest.Builder request = AuthorizeRequest.newBuilder().setContext(context(ctx));
        int[] sent = new int[results.length];
        int sentCount = 0;
        for (int i = 0; i < results.length; i++) {
            if (missed[i] == null) {
                continue;
            }
            dev.kafkapdp.proto.v1.Action action = toProto(actions.get(i));
            if (action == null) {
                results[i] = DENIED;
                metrics.failClosed(ShimMetrics.FailReason.UNSUPPORTED_ACTION, 1);
                continue;
            }
            request.addActions(action);
            sent[sentCount++] = i;
        }
        if (sentCount == 0) {
            return;
        }
        long generation = cache.generation();
        AuthorizeResponse response = call(() -> client.authorize(request.build()), sent, sentCount, results);
        if (response == null) {
            return;
        }
        if (response.getResultsCount() != sentCount) {
            denyAll(sent, sentCount, results, ShimMetrics.FailReason.BAD_RESPONSE);
            warnRateLimited("the PDP answered " + response.getResultsCount() + " results for " + sentCount
                + " actions; denying", null);
            return;
        }
        for (int j = 0; j < sentCount; j++) {
            int i = sent[j];
            ActionResult result = response.getResults(j);
            Boolean allowed = allowed(result.getDecision());
            results[i] = Boolean.TRUE.equals(allowed) ? ALLOWED : DENIED;
            if (allowed == null) {
                metrics.failClosed(ShimMetrics.FailReason.UNKNOWN_DECISION, 1);
            } else if (result.getCacheable()) {
                Action action = actions.get(i);
                Answer answer = new Answer(missed[i], allowed, response.getPolicyVersion(),
                    result.getDeterminingPoliciesList(), action.logIfAllowed(), action.logIfDenied());
                cache.put(answer, generation, sentAtNanos);
            }
        }
    }

    AuthorizationResult authorizeByResourceType(AuthorizableRequestContext ctx, AclOperation op, ResourceType type) {
        AuthorizationResult result = DENIED;
        try {
            result = decideByResourceType(ctx, op, type);
        } catch (RuntimeException e) {
            metrics.failClosed(ShimMetrics.FailReason.INTERNAL_ERROR, 1);
            warnRateLimited("authorizeByResourceType failed inside the shim; denying", e);
        }
        (result == ALLOWED ? metrics.otherAllowed : metrics.otherDenied).increment();
        if (result == DENIED && AUDIT.isInfoEnabled()) {
            AUDIT.info("DENY principal={} operation={} resource={}:* (any resource of the type) host={} api={}",
                ctx.principal(), op, type, ctx.clientAddress().getHostAddress(), apiName(ctx.requestType()));
        }
        return result;
    }

    private AuthorizationResult decideByResourceType(AuthorizableRequestContext ctx, AclOperation op,
                                                     ResourceType type) {
        if (config.isSuperUser(ctx.principal())) {
            return ALLOWED;
        }
        Operation operation = ProtoMapping.operation(op);
        dev.kafkapdp.proto.v1.ResourceType resourceType = ProtoMapping.resourceType(type);
        if (operation == null || resourceType == null) {
            metrics.failClosed(ShimMetrics.FailReason.UNSUPPORTED_ACTION, 1);
            return DENIED;
        }
        AuthorizeByResourceTypeRequest request = AuthorizeByResourceTypeRequest.newBuilder()
            .setContext(context(ctx))
            .setOperation(operation)
            .setResourceType(resourceType)
            .build();
        AuthorizationResult[] result = new AuthorizationResult[1];
        AuthorizeByResourceTypeResponse response =
            call(() -> client.authorizeByResourceType(request), new int[] {0}, 1, result);
        if (response == null) {
            return DENIED;
        }
        Boolean allowed = allowed(response.getDecision());
        if (allowed == null) {
            metrics.failClosed(ShimMetrics.FailReason.UNKNOWN_DECISION, 1);
            return DENIED;
        }
        return allowed ? ALLOWED : DENIED;
    }

    /**
     * Makes one RPC, timing it. On failure denies the listed actions, counts why and returns {@code null}.
     */
    private <T> T call(java.util.function.Supplier<T> rpc, int[] sent, int sentCount, AuthorizationResult[] results) {
        long start = System.nanoTime();
        try {
            return rpc.get();
        } catch (StatusRuntimeException e) {
            ShimMetrics.FailReason reason = reasonOf(e.getStatus());
            denyAll(sent, sentCount, results, reason);
            warnRateLimited("PDP call failed (" + e.getStatus().getCode() + ": " + e.getStatus().getDescription()
                + "); denying " + sentCount + " action(s) as " + reason.tag, null);
            return null;
        } finally {
            metrics.recordPdpRoundTrip(System.nanoTime() - start);
        }
    }

    private static ShimMetrics.FailReason reasonOf(Status status) {
        switch (status.getCode()) {
            case UNAVAILABLE:
                return ShimMetrics.FailReason.UNAVAILABLE;
            case DEADLINE_EXCEEDED:
                return ShimMetrics.FailReason.DEADLINE_EXCEEDED;
            default:
                return ShimMetrics.FailReason.RPC_ERROR;
        }
    }

    /** TRUE for ALLOW, FALSE for DENY, {@code null} for anything else (read as DENY by the caller). */
    private static Boolean allowed(Decision decision) {
        if (decision == Decision.DECISION_ALLOW) {
            return Boolean.TRUE;
        }
        return decision == Decision.DECISION_DENY ? Boolean.FALSE : null;
    }

    private void denyAll(int[] sent, int sentCount, AuthorizationResult[] results, ShimMetrics.FailReason reason) {
        for (int j = 0; j < sentCount; j++) {
            results[sent[j]] = DENIED;
        }
        metrics.failClosed(reason, sentCount);
    }

    private static int fillUndecided(AuthorizationResult[] results) {
        int undecided = 0;
        for (int i = 0; i < results.length; i++) {
            if (results[i] == null) {
                results[i] = DENIED;
                undecided++;
            }
        }
        return undecided;
    }

    private RequestContext context(AuthorizableRequestContext ctx) {
        return RequestContext.newBuilder()
            .setPrincipal(Principal.newBuilder()
                .setType(ctx.principal().getPrincipalType())
                .setName(ctx.principal().getName()))
            .setClientAddress(ctx.clientAddress().getHostAddress())
            .setListener(nullToEmpty(ctx.listenerName()))
            .setSecurityProtocol(ctx.securityProtocol() == null ? "" : ctx.securityProtocol().name)
            .setClientId(nullToEmpty(ctx.clientId()))
            .setRequestApi(apiName(ctx.requestType()))
            .setRequestApiVersion(ctx.requestVersion())
            .setCorrelationId(ctx.correlationId())
            .setBrokerId(config.brokerId())
            .build();
    }

    /** The contract's action, or {@code null} when Kafka asked about something no policy can name. */
    static dev.kafkapdp.proto.v1.Action toProto(Action action) {
        ResourcePattern pattern = action.resourcePattern();
        Operation operation = ProtoMapping.operation(action.operation());
        dev.kafkapdp.proto.v1.ResourceType type = ProtoMapping.resourceType(pattern.resourceType());
        PatternType patternType = ProtoMapping.patternType(pattern.patternType());
        if (operation == null || type == null || patternType == null) {
            return null;
        }
        return dev.kafkapdp.proto.v1.Action.newBuilder()
            .setOperation(operation)
            .setResourceType(type)
            .setResourceName(pattern.name())
            .setPatternType(patternType)
            .setLogIfAllowed(action.logIfAllowed())
            .setLogIfDenied(action.logIfDenied())
            .build();
    }

    /** Kafka's ApiKeys constant name ({@code PRODUCE}), as the contract asks, or {@code UNKNOWN_<id>}. */
    static String apiName(int requestType) {
        try {
            return ApiKeys.forId(requestType).name();
        } catch (IllegalArgumentException e) {
            return "UNKNOWN_" + requestType;
        }
    }

    private static String nullToEmpty(String s) {
        return s == null ? "" : s;
    }

    // === counting and the audit log ===

    private void tallyAndAudit(AuthorizableRequestContext ctx, List<Action> actions, AuthorizationResult[] results,
                               boolean[] fromCache) {
        // Cache hits are counted with their audit tallies (AuditReporter); the rest here.
        int allowedCount = 0;
        int otherAllowed = 0;
        int otherDenied = 0;
        for (int i = 0; i < results.length; i++) {
            boolean allowed = results[i] == ALLOWED;
            allowedCount += allowed ? 1 : 0;
            if (!fromCache[i]) {
                otherAllowed += allowed ? 1 : 0;
                otherDenied += allowed ? 0 : 1;
            }
        }
        addIfPositive(metrics.otherAllowed, otherAllowed);
        addIfPositive(metrics.otherDenied, otherDenied);
        boolean logDenies = allowedCount < results.length && AUDIT.isInfoEnabled();
        boolean logAllowed = allowedCount > 0 && logAllows;
        if (!logDenies && !logAllowed) {
            return;
        }
        for (int i = 0; i < results.length; i++) {
            Action action = actions.get(i);
            String source = fromCache[i] ? "cache" : "pdp";
            if (results[i] == DENIED && logDenies && action.logIfDenied()) {
                AUDIT.info("DENY {} source={}", describe(ctx, action), source);
            } else if (results[i] == ALLOWED && logAllowed && action.logIfAllowed()) {
                AUDIT.debug("ALLOW {} source={}", describe(ctx, action), source);
            }
        }
    }

    private static void addIfPositive(java.util.concurrent.atomic.LongAdder adder, int count) {
        if (count > 0) {
            adder.add(count);
        }
    }

    private String describe(AuthorizableRequestContext ctx, Action action) {
        ResourcePattern pattern = action.resourcePattern();
        return "principal=" + ctx.principal() + " operation=" + action.operation() + " resource="
            + pattern.resourceType() + ":" + pattern.patternType() + ":" + pattern.name() + " host="
            + ctx.clientAddress().getHostAddress() + " listener=" + ctx.listenerName() + " api="
            + apiName(ctx.requestType()) + " policy_version=" + policy.version();
    }

    private void warnRateLimited(String message, Throwable error) {
        long now = System.nanoTime();
        long last = lastWarnNanos.get();
        if (now - last < WARN_EVERY_NANOS || !lastWarnNanos.compareAndSet(last, now)) {
            return;
        }
        if (error == null) {
            LOG.warn("{} (further warnings of this kind are held back for 10 s)", message);
        } else {
            LOG.warn("{} (further warnings of this kind are held back for 10 s)", message, error);
        }
    }

    @Override
    public void close() {
        firstVersion.completeExceptionally(new TimeoutException("the authorizer was closed before the PDP was ready"));
        metrics.unregister();
        auditThread.shutdownNow();
        audit.flushOnClose();
        client.close();
        scheduler.shutdownNow();
    }
}
