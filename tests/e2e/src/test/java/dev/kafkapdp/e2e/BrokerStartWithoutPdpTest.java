package dev.kafkapdp.e2e;

import static dev.kafkapdp.e2e.harness.E2eCluster.BROKER;
import static dev.kafkapdp.e2e.harness.E2eCluster.LAB_WRITER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kafkapdp.e2e.harness.BrokerProcess;
import dev.kafkapdp.e2e.harness.Clients;
import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.E2eEnvironment;
import dev.kafkapdp.e2e.harness.Listener;
import dev.kafkapdp.e2e.harness.PdpProcess;
import dev.kafkapdp.e2e.harness.PolicyDir;
import dev.kafkapdp.e2e.harness.Ports;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.errors.TimeoutException;
import org.junit.jupiter.api.Test;

/**
 * The shim's start futures in a real broker: with no PDP anywhere, the KRaft controller and the inter-broker
 * listener come up (the cluster works between its own nodes); the client listeners stay closed until the PDP
 * answers, then open on their own. Uses its own broker, since the shared one must start with its PDP up.
 */
class BrokerStartWithoutPdpTest {

    private static final Duration CLIENT_LISTENER_DEADLINE = Duration.ofSeconds(60);

    @Test
    void controllerAndInterBrokerListenerStartWithoutThePdpAndClientListenersOpenOnceItAnswers() throws Exception {
        var pdpBinary = E2eEnvironment.pdpBinary();
        var shimJar = E2eEnvironment.shimJar();
        String pdpAddress = "127.0.0.1:" + Ports.free();
        Map<String, String> shimConfig = Map.of(
                "kafka.pdp.endpoints", pdpAddress,
                "kafka.pdp.deadline.ms", Integer.toString(E2eCluster.PDP_DEADLINE_MS),
                // Long enough that the broker is still waiting when the PDP comes up below.
                "kafka.pdp.start.timeout.ms", "180000");
        BrokerProcess.Settings settings = new BrokerProcess.Settings("late-pdp-broker", E2eCluster.SHIM_AUTHORIZER,
                shimConfig, List.of(shimJar), BROKER, List.of(LAB_WRITER));
        String topic = Clients.unique("e2e.labs.late-");

        try (PolicyDir policies = PolicyDir.create();
                BrokerProcess broker = BrokerProcess.startWithoutClients(settings)) {
            // The controller took a topic creation from the super user over the inter-broker listener.
            try (Admin superAdmin = broker.superAdmin()) {
                Clients.createTopics(superAdmin, topic);
            }
            try (Admin client = Admin.create(quick(broker.clientConfig(LAB_WRITER, Listener.CLIENT)))) {
                ExecutionException closed = assertThrows(ExecutionException.class,
                        () -> client.describeCluster().nodes().get(15, TimeUnit.SECONDS),
                        "the client listener must not serve before the PDP is reachable");
                assertInstanceOf(TimeoutException.class, closed.getCause());
            }

            try (PdpProcess pdp = PdpProcess.start(pdpBinary, policies.root(), pdpAddress, "late-pdp")) {
                broker.awaitListener(Listener.CLIENT, LAB_WRITER, CLIENT_LISTENER_DEADLINE);
                try (Admin writer = Admin.create(broker.clientConfig(LAB_WRITER, Listener.CLIENT))) {
                    assertEquals(List.of(topic), List.copyOf(writer.describeTopics(List.of(topic)).allTopicNames()
                            .get(30, TimeUnit.SECONDS).keySet()));
                }
            }
        }
    }

    private static Map<String, Object> quick(Map<String, Object> config) {
        Map<String, Object> quick = new HashMap<>(config);
        quick.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, 3_000);
        quick.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, 5_000);
        return quick;
    }
}
