package dev.kafkapdp.shim;

import java.util.Objects;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The cache key of one decision: the request's context plus one action's operation and resource. Cheap to build
 * on the hot path (no string is concatenated; string hashes are cached by {@link String} itself) and hashed once.
 */
final class DecisionKey {
    private final RequestKey request;
    private final AclOperation operation;
    private final ResourceType resourceType;
    private final String resourceName;
    private final PatternType patternType;
    private final int hash;

    DecisionKey(RequestKey request, AclOperation operation, ResourceType resourceType, String resourceName,
                PatternType patternType) {
        this.request = request;
        this.operation = operation;
        this.resourceType = resourceType;
        this.resourceName = resourceName;
        this.patternType = patternType;
        int h = request.hashCode();
        h = 31 * h + operation.code();
        h = 31 * h + resourceType.code();
        h = 31 * h + Objects.hashCode(resourceName);
        h = 31 * h + patternType.code();
        // Spread the bits so that keys differing only in the low fields do not share hash-table buckets.
        this.hash = h ^ (h >>> 16);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof DecisionKey)) {
            return false;
        }
        DecisionKey other = (DecisionKey) o;
        return hash == other.hash
            && operation == other.operation
            && resourceType == other.resourceType
            && patternType == other.patternType
            && Objects.equals(resourceName, other.resourceName)
            && request.equals(other.request);
    }

    @Override
    public String toString() {
        return request + " " + operation + " " + resourceType + ":" + patternType + ":" + resourceName;
    }
}
