package dev.kafkapdp.shim;

import java.util.EnumMap;
import java.util.Map;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;

import dev.kafkapdp.proto.v1.Operation;

/**
 * Kafka's enums as the contract's enums.
 *
 * <p>A request names one concrete operation on one concrete resource. Kafka's match-anything values ({@code ANY},
 * {@code ALL}, {@code MATCH}) and {@code UNKNOWN} have no counterpart: they map to {@code null}, and the caller
 * denies the action without asking the PDP.
 */
final class ProtoMapping {

    private static final Map<AclOperation, Operation> OPERATIONS = new EnumMap<>(AclOperation.class);
    private static final Map<ResourceType, dev.kafkapdp.proto.v1.ResourceType> RESOURCE_TYPES =
        new EnumMap<>(ResourceType.class);
    private static final Map<PatternType, dev.kafkapdp.proto.v1.PatternType> PATTERN_TYPES =
        new EnumMap<>(PatternType.class);

    static {
        OPERATIONS.put(AclOperation.READ, Operation.OPERATION_READ);
        OPERATIONS.put(AclOperation.WRITE, Operation.OPERATION_WRITE);
        OPERATIONS.put(AclOperation.CREATE, Operation.OPERATION_CREATE);
        OPERATIONS.put(AclOperation.DELETE, Operation.OPERATION_DELETE);
        OPERATIONS.put(AclOperation.ALTER, Operation.OPERATION_ALTER);
        OPERATIONS.put(AclOperation.DESCRIBE, Operation.OPERATION_DESCRIBE);
        OPERATIONS.put(AclOperation.CLUSTER_ACTION, Operation.OPERATION_CLUSTER_ACTION);
        OPERATIONS.put(AclOperation.DESCRIBE_CONFIGS, Operation.OPERATION_DESCRIBE_CONFIGS);
        OPERATIONS.put(AclOperation.ALTER_CONFIGS, Operation.OPERATION_ALTER_CONFIGS);
        OPERATIONS.put(AclOperation.IDEMPOTENT_WRITE, Operation.OPERATION_IDEMPOTENT_WRITE);
        OPERATIONS.put(AclOperation.CREATE_TOKENS, Operation.OPERATION_CREATE_TOKENS);
        OPERATIONS.put(AclOperation.DESCRIBE_TOKENS, Operation.OPERATION_DESCRIBE_TOKENS);
        OPERATIONS.put(AclOperation.TWO_PHASE_COMMIT, Operation.OPERATION_TWO_PHASE_COMMIT);

        RESOURCE_TYPES.put(ResourceType.TOPIC, dev.kafkapdp.proto.v1.ResourceType.RESOURCE_TYPE_TOPIC);
        RESOURCE_TYPES.put(ResourceType.GROUP, dev.kafkapdp.proto.v1.ResourceType.RESOURCE_TYPE_GROUP);
        RESOURCE_TYPES.put(ResourceType.CLUSTER, dev.kafkapdp.proto.v1.ResourceType.RESOURCE_TYPE_CLUSTER);
        RESOURCE_TYPES.put(ResourceType.TRANSACTIONAL_ID,
            dev.kafkapdp.proto.v1.ResourceType.RESOURCE_TYPE_TRANSACTIONAL_ID);
        RESOURCE_TYPES.put(ResourceType.DELEGATION_TOKEN,
            dev.kafkapdp.proto.v1.ResourceType.RESOURCE_TYPE_DELEGATION_TOKEN);
        RESOURCE_TYPES.put(ResourceType.USER, dev.kafkapdp.proto.v1.ResourceType.RESOURCE_TYPE_USER);

        PATTERN_TYPES.put(PatternType.LITERAL, dev.kafkapdp.proto.v1.PatternType.PATTERN_TYPE_LITERAL);
        PATTERN_TYPES.put(PatternType.PREFIXED, dev.kafkapdp.proto.v1.PatternType.PATTERN_TYPE_PREFIXED);
    }

    private ProtoMapping() {
    }

    /** The contract's operation, or {@code null} for ANY, ALL and UNKNOWN. */
    static Operation operation(AclOperation operation) {
        return OPERATIONS.get(operation);
    }

    /** The contract's resource type, or {@code null} for ANY and UNKNOWN. */
    static dev.kafkapdp.proto.v1.ResourceType resourceType(ResourceType type) {
        return RESOURCE_TYPES.get(type);
    }

    /** The contract's pattern type, or {@code null} for ANY, MATCH and UNKNOWN. */
    static dev.kafkapdp.proto.v1.PatternType patternType(PatternType type) {
        return PATTERN_TYPES.get(type);
    }
}
