package dev.kafkapdp.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kafkapdp.e2e.harness.E2eCluster;
import dev.kafkapdp.e2e.harness.SharedCluster;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The installed jar: its relocated Netty loads the native epoll library it carries, inside the real broker. */
@ExtendWith(SharedCluster.class)
class ShimTransportTest {

    @Test
    void theShimsChannelsRunOnNativeEpollInTheBroker(E2eCluster cluster) throws Exception {
        String log = Files.readString(cluster.broker().logDir().resolve("server.log"), StandardCharsets.UTF_8);
        assertTrue(log.contains("channels to the PDP run on Netty's epoll transport"),
                "the shim fell back to NIO or did not say; broker log:\n" + cluster.logTails());
    }
}
