package dev.kafkapdp.shim;

import java.io.IOException;
import java.io.Writer;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;

/**
 * The benchmark's data, the same for every authorizer and every fork (fixed seeds).
 *
 * <p>The ACLs follow the shape of Kafka's own {@code AuthorizerBenchmark}: {@code resources} resources (every
 * tenth a group, every fifth a prefix) with 10 ALLOW READ entries each for {@code User:test-user},
 * {@code User:test-user1} ... {@code User:test-user9}, each paired with a DENY at 20 %, plus host-specific entries on
 * the common prefix. Kafka's benchmark uses 1,000 hosts `127.0.0.N` (N up to 999) and 1,000 wildcard entries with
 * host strings such as `127.0.05`; neither can match a real address and Cedar's {@code ip()} rejects them, so this
 * workload keeps the 256 valid hosts and leaves the wildcard entries out.
 */
final class Workload {

    static final String PREFIX = "foo-bar35_resource-";
    static final int ACLS_PER_RESOURCE = 10;
    static final double DENY_PERCENTAGE = 20;
    static final int HOSTS = 256;
    static final int SAMPLES = 1024;
    static final long SEED = 20_260_101L;

    final int resources;
    final List<AclBinding> acls;
    /** The actions the benchmarks cycle through: READ on resources drawn at random (fixed seed). */
    final List<List<Action>> samples;
    final AuthorizableRequestContext context;

    Workload(int resources) {
        this.resources = resources;
        this.acls = buildAcls(resources);
        this.samples = buildSamples(resources);
        this.context = new BenchContext(new KafkaPrincipal(KafkaPrincipal.USER_TYPE, "test-user"),
            loopback(), "CLIENT", SecurityProtocol.PLAINTEXT, "bench-client", ApiKeys.FETCH.id, 17, 1);
    }

    static Workload fromSystemProperties() {
        return new Workload(Integer.getInteger("bench.resources", 10_000));
    }

    record BenchContext(KafkaPrincipal principal, InetAddress clientAddress, String listenerName,
                        SecurityProtocol securityProtocol, String clientId, int requestType, int requestVersion,
                        int correlationId) implements AuthorizableRequestContext {
    }

    static ResourcePattern resource(int index) {
        ResourceType type = index % 10 == 0 ? ResourceType.GROUP : ResourceType.TOPIC;
        PatternType pattern = index % 5 == 0 ? PatternType.PREFIXED : PatternType.LITERAL;
        return new ResourcePattern(type, PREFIX + index, pattern);
    }

    /** A READ of the resource by its literal name, as a Kafka request would ask. */
    static Action readOf(int index) {
        ResourcePattern acl = resource(index);
        return new Action(AclOperation.READ, new ResourcePattern(acl.resourceType(), acl.name(), PatternType.LITERAL),
            1, true, true);
    }

    private static List<AclBinding> buildAcls(int resources) {
        Random random = new Random(SEED);
        List<AclBinding> acls = new ArrayList<>();
        for (int r = 0; r < resources; r++) {
            ResourcePattern pattern = resource(r);
            for (int a = 0; a < ACLS_PER_RESOURCE; a++) {
                String principal = "User:test-user" + (a == 0 ? "" : Integer.toString(a));
                acls.add(binding(pattern, principal, "*", AclPermissionType.ALLOW));
                if (random.nextDouble() * 100.0 < DENY_PERCENTAGE) {
                    acls.add(binding(pattern, principal, "*", AclPermissionType.DENY));
                }
            }
        }
        ResourcePattern common = new ResourcePattern(ResourceType.TOPIC, PREFIX, PatternType.PREFIXED);
        for (int h = 0; h < HOSTS; h++) {
            acls.add(binding(common, "User:test-user", "127.0.0." + h, AclPermissionType.ALLOW));
            if (random.nextDouble() * 100.0 < DENY_PERCENTAGE) {
                acls.add(binding(common, "User:test-user", "127.0.0." + h, AclPermissionType.DENY));
            }
        }
        return acls;
    }

    private static AclBinding binding(ResourcePattern pattern, String principal, String host,
                                      AclPermissionType permission) {
        return new AclBinding(pattern, new AccessControlEntry(principal, host, AclOperation.READ, permission));
    }

    private static List<List<Action>> buildSamples(int resources) {
        Random random = new Random(SEED + 1);
        List<List<Action>> samples = new ArrayList<>(SAMPLES);
        for (int i = 0; i < SAMPLES; i++) {
            samples.add(List.of(readOf(random.nextInt(resources))));
        }
        return samples;
    }

    /** Writes the ACLs as equivalent Cedar policies, one policy per ACL entry, with the project's schema. */
    void writePolicyDir(Path dir, Path schema) throws IOException {
        Files.createDirectories(dir);
        Files.copy(schema, dir.resolve("schema.cedarschema"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (Writer out = Files.newBufferedWriter(dir.resolve("bench.cedar"), StandardCharsets.UTF_8)) {
            int id = 0;
            for (AclBinding acl : acls) {
                out.write(cedar(acl, id++));
            }
        }
    }

    static String cedar(AclBinding acl, int id) {
        ResourcePattern pattern = acl.pattern();
        String type = pattern.resourceType() == ResourceType.GROUP ? "Group" : "Topic";
        String resource = pattern.patternType() == PatternType.PREFIXED
            ? "resource in Kafka::" + type + "Prefix::\"" + pattern.name() + "\""
            : "resource == Kafka::" + type + "::\"" + pattern.name() + "\"";
        String effect = acl.entry().permissionType() == AclPermissionType.ALLOW ? "permit" : "forbid";
        String host = acl.entry().host();
        String when = host.equals("*") ? "" : " when { context.client_address == ip(\"" + host + "\") }";
        return "@id(\"acl-" + id + "\")\n" + effect + " (\n  principal == Kafka::Principal::\""
            + acl.entry().principal() + "\",\n  action in Kafka::Action::\"Read\",\n  " + resource + "\n)" + when
            + ";\n";
    }

    private static InetAddress loopback() {
        try {
            return InetAddress.getByName("127.0.0.1");
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }
}
