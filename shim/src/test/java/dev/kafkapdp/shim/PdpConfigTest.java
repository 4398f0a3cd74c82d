package dev.kafkapdp.shim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PdpConfigTest {

    @Test
    void defaultsApplyWhenNothingIsSet() {
        PdpConfig config = PdpConfig.parse(Map.of());

        assertEquals(List.of(new PdpConfig.Endpoint("127.0.0.1", 50051)), config.endpoints());
        assertTrue(config.tls().isEmpty());
        assertEquals(100, config.deadlineMs());
        assertEquals(30_000, config.startTimeoutMs());
        assertEquals(100_000, config.cacheMaxEntries());
        assertEquals(300_000, config.cacheTtlMs());
        assertEquals(-1, config.brokerId());
        assertEquals(List.of(), config.superUsers());
    }

    @Test
    void everyKeyIsRead() {
        PdpConfig config = PdpConfig.parse(Map.of(
            PdpConfig.ENDPOINTS_CONFIG, " pdp-a:1, [::1]:2 ,pdp-c:65535",
            PdpConfig.DEADLINE_MS_CONFIG, "25",
            PdpConfig.START_TIMEOUT_MS_CONFIG, 500,
            PdpConfig.CACHE_MAX_ENTRIES_CONFIG, "0",
            PdpConfig.CACHE_TTL_MS_CONFIG, "1000",
            PdpConfig.SUPER_USERS_CONFIG, "User:admin; User:broker;Group:ops",
            PdpConfig.NODE_ID_CONFIG, "3"));

        assertEquals(List.of(new PdpConfig.Endpoint("pdp-a", 1), new PdpConfig.Endpoint("::1", 2),
            new PdpConfig.Endpoint("pdp-c", 65535)), config.endpoints());
        assertEquals("[::1]:2", config.endpoints().get(1).toString());
        assertEquals(25, config.deadlineMs());
        assertEquals(500, config.startTimeoutMs());
        assertEquals(0, config.cacheMaxEntries());
        assertEquals(1000, config.cacheTtlMs());
        assertEquals(3, config.brokerId());
        assertEquals(List.of("Group:ops", "User:admin", "User:broker"), config.superUsers());
        assertTrue(config.isSuperUser(new KafkaPrincipal("User", "admin")));
        assertFalse(config.isSuperUser(new KafkaPrincipal("User", "ops")));
        assertFalse(config.isSuperUser(new KafkaPrincipal("Group", "admin")));
    }

    @Test
    void badNumberNamesTheKeyAndTheValue() {
        ConfigException e = assertThrows(ConfigException.class,
            () -> PdpConfig.parse(Map.of(PdpConfig.DEADLINE_MS_CONFIG, "fast")));
        assertTrue(e.getMessage().contains(PdpConfig.DEADLINE_MS_CONFIG), e.getMessage());
        assertTrue(e.getMessage().contains("fast"), e.getMessage());
    }

    @Test
    void auditBufferSettingsHaveDefaultsAndABadValueNamesItsKey() {
        PdpConfig defaults = PdpConfig.parse(Map.of());
        assertEquals(PdpConfig.AUDIT_BUFFER_MAX_RECORDS_DEFAULT, defaults.auditBufferMaxRecords());
        assertTrue(defaults.auditDenyWhenFull());
        assertEquals(PdpConfig.AUDIT_REPORT_INTERVAL_MS_DEFAULT, defaults.auditReportIntervalMs());
        assertFalse(PdpConfig.parse(Map.of(PdpConfig.AUDIT_DENY_WHEN_FULL_CONFIG, "FALSE")).auditDenyWhenFull());

        ConfigException e = assertThrows(ConfigException.class,
            () -> PdpConfig.parse(Map.of(PdpConfig.AUDIT_DENY_WHEN_FULL_CONFIG, "maybe")));
        assertTrue(e.getMessage().contains(PdpConfig.AUDIT_DENY_WHEN_FULL_CONFIG), e.getMessage());
        assertTrue(e.getMessage().contains("true or false"), e.getMessage());
        e = assertThrows(ConfigException.class,
            () -> PdpConfig.parse(Map.of(PdpConfig.AUDIT_BUFFER_MAX_RECORDS_CONFIG, "0")));
        assertTrue(e.getMessage().contains(PdpConfig.AUDIT_BUFFER_MAX_RECORDS_CONFIG), e.getMessage());
    }

    @Test
    void zeroOrNegativeDurationsAreRejected() {
        assertThrows(ConfigException.class, () -> PdpConfig.parse(Map.of(PdpConfig.DEADLINE_MS_CONFIG, "0")));
        assertThrows(ConfigException.class, () -> PdpConfig.parse(Map.of(PdpConfig.CACHE_TTL_MS_CONFIG, "-5")));
        ConfigException e = assertThrows(ConfigException.class,
            () -> PdpConfig.parse(Map.of(PdpConfig.CACHE_MAX_ENTRIES_CONFIG, "-1")));
        assertTrue(e.getMessage().contains(PdpConfig.CACHE_MAX_ENTRIES_CONFIG), e.getMessage());
    }

    @Test
    void cacheSizeBeyondIntIsRejected() {
        assertThrows(ConfigException.class,
            () -> PdpConfig.parse(Map.of(PdpConfig.CACHE_MAX_ENTRIES_CONFIG, "3000000000")));
    }

    @Test
    void malformedEndpointsAreRejectedWithTheEndpointNamed() {
        for (String bad : List.of("pdp", "pdp:", ":50051", "pdp:http", "pdp:0", "pdp:70000", "::1:5")) {
            ConfigException e = assertThrows(ConfigException.class,
                () -> PdpConfig.parse(Map.of(PdpConfig.ENDPOINTS_CONFIG, "ok:1," + bad)), bad);
            assertTrue(e.getMessage().contains(PdpConfig.ENDPOINTS_CONFIG), e.getMessage());
        }
    }

    @Test
    void emptyEndpointsFallBackToTheDefault() {
        assertEquals(50051, PdpConfig.parse(Map.of(PdpConfig.ENDPOINTS_CONFIG, "  ")).endpoints().get(0).port());
    }

    @Test
    void superUserWithoutTypeIsRejected() {
        ConfigException e = assertThrows(ConfigException.class,
            () -> PdpConfig.parse(Map.of(PdpConfig.SUPER_USERS_CONFIG, "User:admin;alice")));
        assertTrue(e.getMessage().contains("alice"), e.getMessage());
        assertTrue(e.getMessage().contains(PdpConfig.SUPER_USERS_CONFIG), e.getMessage());
    }

    @Test
    void missingTlsFileIsRejected(@TempDir Path dir) {
        String missing = dir.resolve("nope.pem").toString();
        ConfigException e = assertThrows(ConfigException.class,
            () -> PdpConfig.parse(Map.of(PdpConfig.TLS_CA_FILE_CONFIG, missing)));
        assertTrue(e.getMessage().contains(PdpConfig.TLS_CA_FILE_CONFIG), e.getMessage());
        assertTrue(e.getMessage().contains(missing), e.getMessage());
    }

    @Test
    void clientCertificateNeedsKeyAndCa(@TempDir Path dir) throws Exception {
        String cert = Files.writeString(dir.resolve("cert.pem"), "x").toString();
        String key = Files.writeString(dir.resolve("key.pem"), "x").toString();
        String ca = Files.writeString(dir.resolve("ca.pem"), "x").toString();

        ConfigException noKey = assertThrows(ConfigException.class, () -> PdpConfig.parse(Map.of(
            PdpConfig.TLS_CA_FILE_CONFIG, ca, PdpConfig.TLS_CERT_FILE_CONFIG, cert)));
        assertTrue(noKey.getMessage().contains(PdpConfig.TLS_KEY_FILE_CONFIG), noKey.getMessage());
        ConfigException noCa = assertThrows(ConfigException.class, () -> PdpConfig.parse(Map.of(
            PdpConfig.TLS_CERT_FILE_CONFIG, cert, PdpConfig.TLS_KEY_FILE_CONFIG, key)));
        assertTrue(noCa.getMessage().contains(PdpConfig.TLS_CA_FILE_CONFIG), noCa.getMessage());

        PdpConfig mutual = PdpConfig.parse(Map.of(PdpConfig.TLS_CA_FILE_CONFIG, ca,
            PdpConfig.TLS_CERT_FILE_CONFIG, cert, PdpConfig.TLS_KEY_FILE_CONFIG, key));
        assertTrue(mutual.tls().orElseThrow().keyFile().isPresent());
    }
}
