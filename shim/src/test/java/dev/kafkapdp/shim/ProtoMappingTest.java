package dev.kafkapdp.shim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.EnumSet;
import java.util.HashSet;
import java.util.Set;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.junit.jupiter.api.Test;

import dev.kafkapdp.proto.v1.Operation;

class ProtoMappingTest {

    private static final Set<AclOperation> NOT_CONCRETE_OPS =
        EnumSet.of(AclOperation.ANY, AclOperation.ALL, AclOperation.UNKNOWN);

    @Test
    void everyConcreteOperationMapsToItsOwnValueByName() {
        Set<Operation> seen = new HashSet<>();
        for (AclOperation op : AclOperation.values()) {
            Operation mapped = ProtoMapping.operation(op);
            if (NOT_CONCRETE_OPS.contains(op)) {
                assertNull(mapped, op.toString());
                continue;
            }
            assertNotNull(mapped, op.toString());
            assertEquals("OPERATION_" + op.name(), mapped.name());
            seen.add(mapped);
        }
        // Every value of the contract except UNSPECIFIED is reachable, so the two enums did not drift apart.
        assertEquals(Operation.values().length - 2, seen.size()); // minus UNSPECIFIED and UNRECOGNIZED
    }

    @Test
    void everyConcreteResourceTypeMapsByName() {
        Set<dev.kafkapdp.proto.v1.ResourceType> seen = new HashSet<>();
        for (ResourceType type : ResourceType.values()) {
            dev.kafkapdp.proto.v1.ResourceType mapped = ProtoMapping.resourceType(type);
            if (type == ResourceType.ANY || type == ResourceType.UNKNOWN) {
                assertNull(mapped, type.toString());
                continue;
            }
            assertNotNull(mapped, type.toString());
            assertEquals("RESOURCE_TYPE_" + type.name(), mapped.name());
            seen.add(mapped);
        }
        assertEquals(dev.kafkapdp.proto.v1.ResourceType.values().length - 2, seen.size());
    }

    @Test
    void onlyLiteralAndPrefixedPatternsMap() {
        for (PatternType type : PatternType.values()) {
            dev.kafkapdp.proto.v1.PatternType mapped = ProtoMapping.patternType(type);
            if (type == PatternType.LITERAL || type == PatternType.PREFIXED) {
                assertEquals("PATTERN_TYPE_" + type.name(), mapped.name());
            } else {
                assertNull(mapped, type.toString());
            }
        }
    }
}
