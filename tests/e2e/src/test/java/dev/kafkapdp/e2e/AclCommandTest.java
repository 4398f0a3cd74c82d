package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_READER;
import static dev.kafkapdp.e2e.harness.E2eCluster.PLATFORM_ADMIN;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kafkapdp.e2e.harness.ChildProcess;
import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.E2eEnvironment;
import dev.kafkapdp.e2e.harness.Listener;
import dev.kafkapdp.e2e.harness.SharedCluster;
import dev.kafkapdp.e2e.harness.TestUser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kafka's own {@code kafka-acls} tool ({@code org.apache.kafka.tools.AclCommand}), run as a separate process
 * exactly as {@code kafka-acls.sh} runs it: the listing shows the shim's read-only note, and adding an ACL is
 * refused with the message that access is managed as Cedar policies.
 */
@ExtendWith(SharedCluster.class)
class AclCommandTest {

    private static final String MANAGED_AS_CEDAR = "managed as Cedar policies";
    private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(90);

    @TempDir
    Path workDir;

    @Test
    void listShowsTheReadOnlyViewThatPointsToCedar(E2eCluster cluster) throws Exception {
        ChildProcess.Result list = kafkaAcls(cluster, PLATFORM_ADMIN, "--list");

        assertEquals(0, list.exitCode(), "kafka-acls --list failed:\n" + list.output());
        assertTrue(list.output().contains(MANAGED_AS_CEDAR),
                "kafka-acls --list does not show the read-only note:\n" + list.output());
    }

    @Test
    void addIsRefusedWithTheCedarMessageAndCreatesNothing(E2eCluster cluster) throws Exception {
        String topic = Clients.unique("e2e.labs.acl-");
        ChildProcess.Result add = kafkaAcls(cluster, PLATFORM_ADMIN, "--add", "--allow-principal",
                LAB_READER.principal(), "--operation", "Write", "--topic", topic);

        assertNotEquals(0, add.exitCode(), "kafka-acls --add must fail:\n" + add.output());
        assertTrue(add.output().contains(MANAGED_AS_CEDAR),
                "kafka-acls --add does not say access is managed as Cedar policies:\n" + add.output());

        try (Admin admin = cluster.admin(PLATFORM_ADMIN)) {
            Collection<AclBinding> acls = admin.describeAcls(AclBindingFilter.ANY).values().get(30, TimeUnit.SECONDS);
            List<AclBinding> aboutTopic = acls.stream().filter(acl -> acl.pattern().name().equals(topic)).toList();
            assertEquals(List.of(), aboutTopic, "an ACL was created after all");
        }
    }

    /** Runs {@code kafka-acls} as {@code user} against the SASL_PLAINTEXT listener. */
    private ChildProcess.Result kafkaAcls(E2eCluster cluster, TestUser user, String... args) throws IOException {
        Path commandConfig = workDir.resolve("command-" + user.name() + ".properties");
        List<String> lines = new ArrayList<>();
        cluster.clientConfig(user, Listener.CLIENT).forEach((key, value) -> {
            if (!key.equals("bootstrap.servers")) {
                lines.add(key + "=" + value.toString().replace("\\", "\\\\"));
            }
        });
        Files.write(commandConfig, lines, StandardCharsets.UTF_8);

        List<String> command = new ArrayList<>(List.of(E2eEnvironment.javaLauncher().toString(),
                "-Xmx256m", "-XX:TieredStopAtLevel=1",
                "-cp", E2eEnvironment.kafkaLibs().resolve("*").toString(),
                "org.apache.kafka.tools.AclCommand",
                "--bootstrap-server", cluster.broker().bootstrap(Listener.CLIENT),
                "--command-config", commandConfig.toString()));
        command.addAll(List.of(args));
        return ChildProcess.run("kafka-acls", command, workDir, TOOL_TIMEOUT);
    }
}
