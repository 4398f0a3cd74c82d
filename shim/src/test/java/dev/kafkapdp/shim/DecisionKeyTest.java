package dev.kafkapdp.shim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.net.InetAddress;
import java.util.List;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.junit.jupiter.api.Test;

class DecisionKeyTest {

    private static InetAddress ip(String text) {
        try {
            return InetAddress.getByName(text);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** The context part of a key, completed by {@link #key}. */
    private record Request(String type, String name, String ip, String listener, SecurityProtocol proto,
                           String clientId, int api) {
    }

    private static Request request(String type, String name, String ip, String listener, SecurityProtocol proto,
                                   String clientId, int api) {
        return new Request(type, name, ip, listener, proto, clientId, api);
    }

    private static Request base() {
        return request("User", "alice", "10.0.0.1", "SASL_SSL", SecurityProtocol.SASL_SSL, "app", 0);
    }

    private static DecisionKey key(Request r, AclOperation op, ResourceType type, String name, PatternType pattern) {
        return DecisionKey.of(r.type(), r.name(), ip(r.ip()), r.listener(), r.proto(), r.clientId(), r.api(), op,
            type, name, pattern);
    }

    @Test
    void equalInputsGiveEqualKeysFromFreshStrings() {
        DecisionKey a = key(base(), AclOperation.READ, ResourceType.TOPIC, "phi.labs", PatternType.LITERAL);
        DecisionKey b = key(request(new String("User"), new String("alice"), "10.0.0.1", new String("SASL_SSL"),
            SecurityProtocol.SASL_SSL, new String("app"), 0), AclOperation.READ, ResourceType.TOPIC,
            new String("phi.labs"), PatternType.LITERAL);

        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
    }

    @Test
    void everyFieldThatPoliciesReadSeparatesKeys() {
        DecisionKey reference = key(base(), AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL);
        List<DecisionKey> others = List.of(
            key(request("Group", "alice", "10.0.0.1", "SASL_SSL", SecurityProtocol.SASL_SSL, "app", 0),
                AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(request("User", "bob", "10.0.0.1", "SASL_SSL", SecurityProtocol.SASL_SSL, "app", 0),
                AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(request("User", "alice", "10.0.0.2", "SASL_SSL", SecurityProtocol.SASL_SSL, "app", 0),
                AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(request("User", "alice", "10.0.0.1", "INTERNAL", SecurityProtocol.SASL_SSL, "app", 0),
                AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(request("User", "alice", "10.0.0.1", "SASL_SSL", SecurityProtocol.SSL, "app", 0),
                AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(request("User", "alice", "10.0.0.1", "SASL_SSL", SecurityProtocol.SASL_SSL, "other", 0),
                AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(request("User", "alice", "10.0.0.1", "SASL_SSL", SecurityProtocol.SASL_SSL, "app", 1),
                AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(base(), AclOperation.WRITE, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(base(), AclOperation.READ, ResourceType.GROUP, "t", PatternType.LITERAL),
            key(base(), AclOperation.READ, ResourceType.TOPIC, "u", PatternType.LITERAL),
            key(base(), AclOperation.READ, ResourceType.TOPIC, "t", PatternType.PREFIXED));

        for (DecisionKey other : others) {
            assertNotEquals(reference, other, other.toString());
        }
    }

    @Test
    void nullClientIdAndListenerAreAllowed() {
        Request a = request("User", "alice", "10.0.0.1", null, SecurityProtocol.PLAINTEXT, null, 3);
        Request b = request("User", "alice", "10.0.0.1", null, SecurityProtocol.PLAINTEXT, null, 3);
        assertEquals(key(a, AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL),
            key(b, AclOperation.READ, ResourceType.TOPIC, "t", PatternType.LITERAL));
    }
}
