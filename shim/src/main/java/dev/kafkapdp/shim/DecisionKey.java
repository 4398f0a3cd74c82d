package dev.kafkapdp.shim;

import java.net.InetAddress;
import java.util.Objects;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;

/**
 * The cache key of one decision: everything a policy can read, from the request's context (principal, client
 * address, listener, security protocol, client id, request API) and from one action (operation, resource type,
 * name, pattern type).
 *
 * <p>Built on the hot path, so it is cheap: one flat object, no string concatenated, string hashes cached by
 * {@link String} itself, and the context's share of the hash computed once per {@code authorize} call
 * ({@link #contextHash}) and reused for every action of the call.
 *
 * <p>The api version, correlation id and broker id are left out on purpose: the PDP carries them to the audit
 * trail only, and no policy can read them.
 */
class DecisionKey {
    private final String principalType;
    private final String principalName;
    private final InetAddress clientAddress;
    private final String listener;
    private final SecurityProtocol securityProtocol;
    private final String clientId;
    private final int requestType;
    private final AclOperation operation;
    private final ResourceType resourceType;
    private final String resourceName;
    private final PatternType patternType;
    private final int hash;

    private DecisionKey(String principalType, String principalName, InetAddress clientAddress, String listener,
                        SecurityProtocol securityProtocol, String clientId, int requestType, int contextHash,
                        AclOperation operation, ResourceType resourceType, String resourceName,
                        PatternType patternType) {
        this.principalType = principalType;
        this.principalName = principalName;
        this.clientAddress = clientAddress;
        this.listener = listener;
        this.securityProtocol = securityProtocol;
        this.clientId = clientId;
        this.requestType = requestType;
        this.operation = operation;
        this.resourceType = resourceType;
        this.resourceName = resourceName;
        this.patternType = patternType;
        this.hash = hash(contextHash, operation, resourceType, resourceName, patternType);
    }

    /** A copy of {@code other}, for {@link Answer}, which is the key it answers. */
    DecisionKey(DecisionKey other) {
        this.principalType = other.principalType;
        this.principalName = other.principalName;
        this.clientAddress = other.clientAddress;
        this.listener = other.listener;
        this.securityProtocol = other.securityProtocol;
        this.clientId = other.clientId;
        this.requestType = other.requestType;
        this.operation = other.operation;
        this.resourceType = other.resourceType;
        this.resourceName = other.resourceName;
        this.patternType = other.patternType;
        this.hash = other.hash;
    }

    /** The hash of the key of {@code action} in a request whose context hash is given, without building the key. */
    static int hash(int contextHash, Action action) {
        ResourcePattern pattern = action.resourcePattern();
        return hash(contextHash, action.operation(), pattern.resourceType(), pattern.name(), pattern.patternType());
    }

    private static int hash(int contextHash, AclOperation operation, ResourceType resourceType, String resourceName,
                            PatternType patternType) {
        int h = contextHash;
        h = 31 * h + operation.code();
        h = 31 * h + resourceType.code();
        h = 31 * h + Objects.hashCode(resourceName);
        h = 31 * h + patternType.code();
        // Spread the bits so that keys differing only in the last fields do not share hash-table buckets.
        return h ^ (h >>> 16);
    }

    /**
     * Whether this is the key of {@code action} in the request {@code ctx}: {@link #equals} without building the
     * other key, so that a cache hit allocates nothing.
     */
    boolean matches(AuthorizableRequestContext ctx, Action action) {
        ResourcePattern pattern = action.resourcePattern();
        return operation == action.operation()
            && resourceType == pattern.resourceType()
            && patternType == pattern.patternType()
            && requestType == ctx.requestType()
            && securityProtocol == ctx.securityProtocol()
            && Objects.equals(resourceName, pattern.name())
            && Objects.equals(principalName, ctx.principal().getName())
            && Objects.equals(principalType, ctx.principal().getPrincipalType())
            && Objects.equals(clientAddress, ctx.clientAddress())
            && Objects.equals(listener, ctx.listenerName())
            && Objects.equals(clientId, ctx.clientId());
    }

    /** The key of one action of a request whose {@link #contextHash(AuthorizableRequestContext)} is given. */
    static DecisionKey of(AuthorizableRequestContext ctx, int contextHash, Action action) {
        ResourcePattern pattern = action.resourcePattern();
        return new DecisionKey(ctx.principal().getPrincipalType(), ctx.principal().getName(), ctx.clientAddress(),
            ctx.listenerName(), ctx.securityProtocol(), ctx.clientId(), ctx.requestType(), contextHash,
            action.operation(), pattern.resourceType(), pattern.name(), pattern.patternType());
    }

    /** The key from its parts, for tests and benchmarks. */
    static DecisionKey of(String principalType, String principalName, InetAddress clientAddress, String listener,
                          SecurityProtocol securityProtocol, String clientId, int requestType,
                          AclOperation operation, ResourceType resourceType, String resourceName,
                          PatternType patternType) {
        int contextHash = contextHash(principalType, principalName, clientAddress, listener, securityProtocol,
            clientId, requestType);
        return new DecisionKey(principalType, principalName, clientAddress, listener, securityProtocol, clientId,
            requestType, contextHash, operation, resourceType, resourceName, patternType);
    }

    /** The context's share of the hash: computed once per {@code authorize} call. */
    static int contextHash(AuthorizableRequestContext ctx) {
        return contextHash(ctx.principal().getPrincipalType(), ctx.principal().getName(), ctx.clientAddress(),
            ctx.listenerName(), ctx.securityProtocol(), ctx.clientId(), ctx.requestType());
    }

    private static int contextHash(String principalType, String principalName, InetAddress clientAddress,
                                   String listener, SecurityProtocol securityProtocol, String clientId,
                                   int requestType) {
        int h = Objects.hashCode(principalType);
        h = 31 * h + Objects.hashCode(principalName);
        h = 31 * h + Objects.hashCode(clientAddress);
        h = 31 * h + Objects.hashCode(listener);
        h = 31 * h + (securityProtocol == null ? 0 : securityProtocol.id);
        h = 31 * h + Objects.hashCode(clientId);
        return 31 * h + requestType;
    }

    /**
     * The request context of this key for the audit trail, as the contract carries it; the api version and
     * correlation id are not part of the key and stay 0.
     */
    dev.kafkapdp.proto.v1.RequestContext context(int brokerId) {
        return dev.kafkapdp.proto.v1.RequestContext.newBuilder()
            .setPrincipal(dev.kafkapdp.proto.v1.Principal.newBuilder()
                .setType(principalType)
                .setName(principalName))
            .setClientAddress(clientAddress == null ? "" : clientAddress.getHostAddress())
            .setListener(listener == null ? "" : listener)
            .setSecurityProtocol(securityProtocol == null ? "" : securityProtocol.name)
            .setClientId(clientId == null ? "" : clientId)
            .setRequestApi(Decider.apiName(requestType))
            .setBrokerId(brokerId)
            .build();
    }

    /** The action of this key as the contract carries it, with Kafka's log flags. */
    dev.kafkapdp.proto.v1.Action action(boolean logIfAllowed, boolean logIfDenied) {
        return dev.kafkapdp.proto.v1.Action.newBuilder()
            .setOperation(ProtoMapping.operation(operation))
            .setResourceType(ProtoMapping.resourceType(resourceType))
            .setResourceName(resourceName)
            .setPatternType(ProtoMapping.patternType(patternType))
            .setLogIfAllowed(logIfAllowed)
            .setLogIfDenied(logIfDenied)
            .build();
    }

    @Override
    public final int hashCode() {
        return hash;
    }

    /** Equal to any key of the same fields, {@link Answer}s included: an answer is looked up by its key. */
    @Override
    public final boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof DecisionKey)) {
            return false;
        }
        DecisionKey other = (DecisionKey) o;
        // Cheap and most selective comparisons first; strings are usually the very same instances.
        return hash == other.hash
            && operation == other.operation
            && resourceType == other.resourceType
            && patternType == other.patternType
            && requestType == other.requestType
            && securityProtocol == other.securityProtocol
            && Objects.equals(resourceName, other.resourceName)
            && Objects.equals(principalName, other.principalName)
            && Objects.equals(principalType, other.principalType)
            && Objects.equals(clientAddress, other.clientAddress)
            && Objects.equals(listener, other.listener)
            && Objects.equals(clientId, other.clientId);
    }

    @Override
    public String toString() {
        return principalType + ":" + principalName + "@" + clientAddress + " listener=" + listener + " protocol="
            + securityProtocol + " clientId=" + clientId + " api=" + requestType + " " + operation + " "
            + resourceType + ":" + patternType + ":" + resourceName;
    }
}
