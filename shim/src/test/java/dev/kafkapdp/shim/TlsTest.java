package dev.kafkapdp.shim;

import static dev.kafkapdp.shim.TestContexts.await;
import static dev.kafkapdp.shim.TestContexts.ctx;
import static dev.kafkapdp.shim.TestContexts.topics;
import static org.apache.kafka.server.authorizer.AuthorizationResult.ALLOWED;
import static org.apache.kafka.server.authorizer.AuthorizationResult.DENIED;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;

/**
 * TLS and mutual TLS from the shim to a PDP on loopback, with a throw-away CA made by {@code openssl} (the
 * Debian base system has it; a machine without it fails this test rather than skipping it).
 */
class TlsTest {

    @TempDir
    static Path dir;

    private final PdpAuthorizer authorizer = new PdpAuthorizer();

    @BeforeAll
    static void makeCertificates() throws Exception {
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=kafka-pdp test CA");
        Files.writeString(dir.resolve("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
        Files.writeString(dir.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
        for (String name : List.of("server", "client")) {
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name);
            openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".pem", "-days", "1", "-extfile", name + ".ext");
        }
    }

    private static void openssl(String... args) throws IOException, InterruptedException {
        List<String> command = new java.util.ArrayList<>(List.of("openssl"));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
            throw new IllegalStateException("openssl " + String.join(" ", args) + " failed: " + output);
        }
    }

    private static SslContext serverTls(boolean requireClientCert) throws IOException {
        var builder = GrpcSslContexts.forServer(dir.resolve("server.pem").toFile(), dir.resolve("server.key").toFile());
        if (requireClientCert) {
            builder.trustManager(dir.resolve("ca.pem").toFile()).clientAuth(ClientAuth.REQUIRE);
        }
        return builder.build();
    }

    private static String file(String name) {
        return dir.resolve(name).toString();
    }

    @AfterEach
    void close() {
        authorizer.close();
    }

    @Test
    void mutualTlsWithTheClientCertificateIsServed() throws Exception {
        try (FakePdp pdp = new FakePdp(0, serverTls(true))) {
            authorizer.configure(Map.of(PdpConfig.ENDPOINTS_CONFIG, pdp.endpoint(),
                PdpConfig.TLS_CA_FILE_CONFIG, file("ca.pem"),
                PdpConfig.TLS_CERT_FILE_CONFIG, file("client.pem"),
                PdpConfig.TLS_KEY_FILE_CONFIG, file("client.key"),
                PdpConfig.DEADLINE_MS_CONFIG, "2000"));
            await("version over mTLS", Duration.ofSeconds(10), () -> authorizer.decider().policy().known());

            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
        }
    }

    @Test
    void serverOnlyTlsIsServed() throws Exception {
        try (FakePdp pdp = new FakePdp(0, serverTls(false))) {
            authorizer.configure(Map.of(PdpConfig.ENDPOINTS_CONFIG, pdp.endpoint(),
                PdpConfig.TLS_CA_FILE_CONFIG, file("ca.pem"), PdpConfig.DEADLINE_MS_CONFIG, "2000"));

            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
        }
    }

    @Test
    void withoutAClientCertificateAnMtlsPdpIsDenied() throws Exception {
        try (FakePdp pdp = new FakePdp(0, serverTls(true))) {
            authorizer.configure(Map.of(PdpConfig.ENDPOINTS_CONFIG, pdp.endpoint(),
                PdpConfig.TLS_CA_FILE_CONFIG, file("ca.pem"), PdpConfig.DEADLINE_MS_CONFIG, "2000"));

            assertEquals(List.of(DENIED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
            assertFalse(authorizer.decider().policy().known());
            assertTrue(pdp.requests.isEmpty(), "no request may reach a PDP that refused the handshake");
        }
    }

    @Test
    void aServerWhoseCertificateIsNotFromTheCaIsDenied() throws Exception {
        try (FakePdp pdp = new FakePdp(0, serverTls(false))) {
            // The client trusts only its own certificate, not the CA that signed the server's.
            authorizer.configure(Map.of(PdpConfig.ENDPOINTS_CONFIG, pdp.endpoint(),
                PdpConfig.TLS_CA_FILE_CONFIG, file("client.pem"), PdpConfig.DEADLINE_MS_CONFIG, "2000"));

            assertEquals(List.of(DENIED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
            assertTrue(pdp.requests.isEmpty());
        }
    }

    @Test
    void aKeyFileThatIsNotAKeyFailsConfiguration() {
        ConfigException e = assertThrows(ConfigException.class, () -> authorizer.configure(Map.of(
            PdpConfig.TLS_CA_FILE_CONFIG, file("ca.pem"),
            PdpConfig.TLS_CERT_FILE_CONFIG, file("client.pem"),
            PdpConfig.TLS_KEY_FILE_CONFIG, file("client.ext"))));
        assertTrue(e.getMessage().contains("kafka.pdp.tls"), e.getMessage());
    }
}
