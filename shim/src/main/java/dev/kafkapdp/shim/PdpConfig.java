package dev.kafkapdp.shim;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.security.auth.KafkaPrincipal;

/**
 * The shim's settings, parsed once from the broker's configuration and never changed afterwards.
 *
 * <p>Every key is a {@code *_CONFIG} constant with its default beside it. Parsing goes through small static
 * helpers so that each rule is tested on its own; a bad value fails with a {@link ConfigException} that names the
 * key and the value, before the broker starts serving.
 */
public final class PdpConfig {

    /**
     * Comma-separated {@code host:port} list of PDP replicas. Requests are spread over the reachable ones; an
     * unreachable replica is skipped and retried with backoff. Default {@value #ENDPOINTS_DEFAULT}.
     */
    public static final String ENDPOINTS_CONFIG = "kafka.pdp.endpoints";
    /** Default of {@link #ENDPOINTS_CONFIG}: one PDP beside the broker. */
    public static final String ENDPOINTS_DEFAULT = "127.0.0.1:50051";

    /**
     * PEM file of the CA that signed the PDP's server certificate. Setting it turns on TLS; unset means
     * plaintext (which the PDP only accepts on loopback). No default.
     */
    public static final String TLS_CA_FILE_CONFIG = "kafka.pdp.tls.ca.file";

    /**
     * PEM certificate chain the shim presents to the PDP (mutual TLS). Requires {@link #TLS_KEY_FILE_CONFIG} and
     * {@link #TLS_CA_FILE_CONFIG}. No default.
     */
    public static final String TLS_CERT_FILE_CONFIG = "kafka.pdp.tls.cert.file";

    /** PKCS#8 PEM private key of {@link #TLS_CERT_FILE_CONFIG}. No default. */
    public static final String TLS_KEY_FILE_CONFIG = "kafka.pdp.tls.key.file";

    /**
     * The longest a request-handler thread waits for the PDP, in milliseconds, per {@code authorize} call. When it
     * passes, every uncached action of the call is denied. Default {@value #DEADLINE_MS_DEFAULT}.
     */
    public static final String DEADLINE_MS_CONFIG = "kafka.pdp.deadline.ms";
    /** Default of {@link #DEADLINE_MS_CONFIG}. */
    public static final long DEADLINE_MS_DEFAULT = 100;

    /**
     * How long client listeners wait at broker start for the PDP to report its policy version, in milliseconds,
     * before their start futures fail. Default {@value #START_TIMEOUT_MS_DEFAULT}.
     */
    public static final String START_TIMEOUT_MS_CONFIG = "kafka.pdp.start.timeout.ms";
    /** Default of {@link #START_TIMEOUT_MS_CONFIG}. */
    public static final long START_TIMEOUT_MS_DEFAULT = 30_000;

    /**
     * Most decisions held in the local cache. {@code 0} turns the cache off (every action asks the PDP). Default
     * {@value #CACHE_MAX_ENTRIES_DEFAULT}.
     */
    public static final String CACHE_MAX_ENTRIES_CONFIG = "kafka.pdp.cache.max.entries";
    /** Default of {@link #CACHE_MAX_ENTRIES_CONFIG}. */
    public static final int CACHE_MAX_ENTRIES_DEFAULT = 100_000;

    /**
     * Longest life of a cached decision, in milliseconds, even when the policy version does not change: a second
     * guard behind the version stream. Default {@value #CACHE_TTL_MS_DEFAULT}.
     */
    public static final String CACHE_TTL_MS_CONFIG = "kafka.pdp.cache.ttl.ms";
    /** Default of {@link #CACHE_TTL_MS_CONFIG}. */
    public static final long CACHE_TTL_MS_DEFAULT = 300_000;

    /**
     * Most audit records of cache answers the shim holds while it waits to hand them to the PDP. Identical answers
     * are folded into one record with a count, so this bounds distinct (principal, client, resource, ...) answers,
     * not requests; the default matches the cache's, so a report interval's worth of hits on a full cache fits. A
     * record waiting for the PDP takes a few hundred bytes of heap. Default {@value #AUDIT_BUFFER_MAX_RECORDS_DEFAULT}.
     */
    public static final String AUDIT_BUFFER_MAX_RECORDS_CONFIG = "kafka.pdp.audit.buffer.max.records";
    /** Default of {@link #AUDIT_BUFFER_MAX_RECORDS_CONFIG}. */
    public static final int AUDIT_BUFFER_MAX_RECORDS_DEFAULT = 100_000;

    /**
     * What a cache hit does when the audit buffer is full and it would need a new record: {@code true} sends it to
     * the PDP as if it were a miss (the PDP records its own decisions; a PDP that cannot be reached means DENY),
     * {@code false} answers from the cache unrecorded and counts it. Default {@value #AUDIT_DENY_WHEN_FULL_DEFAULT}.
     */
    public static final String AUDIT_DENY_WHEN_FULL_CONFIG = "kafka.pdp.audit.deny.when.full";
    /** Default of {@link #AUDIT_DENY_WHEN_FULL_CONFIG}. */
    public static final boolean AUDIT_DENY_WHEN_FULL_DEFAULT = true;

    /**
     * How often, in milliseconds, the shim hands the audit records of its cache answers to the PDP. What a broker
     * crash can lose is what answered since the last report. Default {@value #AUDIT_REPORT_INTERVAL_MS_DEFAULT}.
     */
    public static final String AUDIT_REPORT_INTERVAL_MS_CONFIG = "kafka.pdp.audit.report.interval.ms";
    /** Default of {@link #AUDIT_REPORT_INTERVAL_MS_CONFIG}. */
    public static final long AUDIT_REPORT_INTERVAL_MS_DEFAULT = 1_000;

    /**
     * Kafka's own setting: semicolon-separated principals ({@code User:admin;User:broker}) that are allowed
     * everything, answered inside the broker without asking the PDP. Default: none.
     */
    public static final String SUPER_USERS_CONFIG = "super.users";

    /** Kafka's {@code node.id}, carried to the PDP as the broker id for the audit trail. Default -1. */
    public static final String NODE_ID_CONFIG = "node.id";

    private final List<Endpoint> endpoints;
    private final Optional<Tls> tls;
    private final long deadlineMs;
    private final long startTimeoutMs;
    private final int cacheMaxEntries;
    private final long cacheTtlMs;
    private final Map<String, Set<String>> superUsers;
    private final int brokerId;
    private final int auditBufferMaxRecords;
    private final boolean auditDenyWhenFull;
    private final long auditReportIntervalMs;

    /** A PDP address from {@link #ENDPOINTS_CONFIG}. */
    public record Endpoint(String host, int port) {
        @Override
        public String toString() {
            return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
        }
    }

    /** The TLS files; {@code certFile} and {@code keyFile} are both present (mutual TLS) or both absent. */
    public record Tls(Path caFile, Optional<Path> certFile, Optional<Path> keyFile) {
    }

    private PdpConfig(Map<String, ?> configs) {
        this.endpoints = parseEndpoints(ENDPOINTS_CONFIG, stringOr(configs, ENDPOINTS_CONFIG, ENDPOINTS_DEFAULT));
        this.tls = parseTls(configs);
        this.deadlineMs = parsePositiveLong(DEADLINE_MS_CONFIG, configs.get(DEADLINE_MS_CONFIG), DEADLINE_MS_DEFAULT);
        this.startTimeoutMs =
            parsePositiveLong(START_TIMEOUT_MS_CONFIG, configs.get(START_TIMEOUT_MS_CONFIG), START_TIMEOUT_MS_DEFAULT);
        this.cacheMaxEntries = (int) parseBoundedLong(
            CACHE_MAX_ENTRIES_CONFIG, configs.get(CACHE_MAX_ENTRIES_CONFIG), CACHE_MAX_ENTRIES_DEFAULT, 0,
            Integer.MAX_VALUE);
        this.cacheTtlMs =
            parsePositiveLong(CACHE_TTL_MS_CONFIG, configs.get(CACHE_TTL_MS_CONFIG), CACHE_TTL_MS_DEFAULT);
        this.superUsers = parseSuperUsers(SUPER_USERS_CONFIG, configs.get(SUPER_USERS_CONFIG));
        this.brokerId = (int) parseBoundedLong(NODE_ID_CONFIG, configs.get(NODE_ID_CONFIG), -1, -1, Integer.MAX_VALUE);
        this.auditBufferMaxRecords = (int) parseBoundedLong(AUDIT_BUFFER_MAX_RECORDS_CONFIG,
            configs.get(AUDIT_BUFFER_MAX_RECORDS_CONFIG), AUDIT_BUFFER_MAX_RECORDS_DEFAULT, 1, Integer.MAX_VALUE);
        this.auditDenyWhenFull = parseBoolean(AUDIT_DENY_WHEN_FULL_CONFIG, configs.get(AUDIT_DENY_WHEN_FULL_CONFIG),
            AUDIT_DENY_WHEN_FULL_DEFAULT);
        this.auditReportIntervalMs = parsePositiveLong(AUDIT_REPORT_INTERVAL_MS_CONFIG,
            configs.get(AUDIT_REPORT_INTERVAL_MS_CONFIG), AUDIT_REPORT_INTERVAL_MS_DEFAULT);
    }

    /**
     * Parses the broker's configuration.
     *
     * @throws ConfigException naming the first bad key and its value
     */
    public static PdpConfig parse(Map<String, ?> configs) {
        return new PdpConfig(configs);
    }

    public List<Endpoint> endpoints() {
        return endpoints;
    }

    public Optional<Tls> tls() {
        return tls;
    }

    public long deadlineMs() {
        return deadlineMs;
    }

    public long startTimeoutMs() {
        return startTimeoutMs;
    }

    public int cacheMaxEntries() {
        return cacheMaxEntries;
    }

    public long cacheTtlMs() {
        return cacheTtlMs;
    }

    public int brokerId() {
        return brokerId;
    }

    public int auditBufferMaxRecords() {
        return auditBufferMaxRecords;
    }

    public boolean auditDenyWhenFull() {
        return auditDenyWhenFull;
    }

    public long auditReportIntervalMs() {
        return auditReportIntervalMs;
    }

    /** Whether the principal is listed in {@link #SUPER_USERS_CONFIG}; allocation-free. */
    public boolean isSuperUser(KafkaPrincipal principal) {
        if (superUsers.isEmpty()) {
            return false;
        }
        Set<String> names = superUsers.get(principal.getPrincipalType());
        return names != null && names.contains(principal.getName());
    }

    /** The super users as {@code Type:name} strings, for logging at start. */
    public List<String> superUsers() {
        List<String> all = new ArrayList<>();
        superUsers.forEach((type, names) -> names.forEach(name -> all.add(type + ":" + name)));
        Collections.sort(all);
        return all;
    }

    // === parsing helpers, package-private for tests ===

    static String stringOr(Map<String, ?> configs, String key, String fallback) {
        Object value = configs.get(key);
        if (value == null) {
            return fallback;
        }
        String text = value.toString().trim();
        return text.isEmpty() ? fallback : text;
    }

    static List<Endpoint> parseEndpoints(String key, String value) {
        List<Endpoint> result = new ArrayList<>();
        for (String raw : value.split(",")) {
            String item = raw.trim();
            if (item.isEmpty()) {
                continue;
            }
            result.add(parseEndpoint(key, value, item));
        }
        if (result.isEmpty()) {
            throw new ConfigException(key, value, "expected a comma-separated list of host:port");
        }
        return List.copyOf(result);
    }

    private static Endpoint parseEndpoint(String key, String value, String item) {
        int colon = item.lastIndexOf(':');
        if (colon <= 0 || colon == item.length() - 1) {
            throw new ConfigException(key, value, "endpoint `" + item + "` is not host:port");
        }
        String host = item.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        } else if (host.contains(":")) {
            throw new ConfigException(key, value, "IPv6 endpoint `" + item + "` must be written [addr]:port");
        }
        int port;
        try {
            port = Integer.parseInt(item.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new ConfigException(key, value, "endpoint `" + item + "` has a port that is not a number");
        }
        if (port < 1 || port > 65535) {
            throw new ConfigException(key, value, "endpoint `" + item + "` has a port outside 1-65535");
        }
        return new Endpoint(host, port);
    }

    static boolean parseBoolean(String key, Object value, boolean fallback) {
        if (value == null || value.toString().trim().isEmpty()) {
            return fallback;
        }
        switch (value.toString().trim().toLowerCase(java.util.Locale.ROOT)) {
            case "true":
                return true;
            case "false":
                return false;
            default:
                throw new ConfigException(key, value, "expected true or false");
        }
    }

    static long parsePositiveLong(String key, Object value, long fallback) {
        return parseBoundedLong(key, value, fallback, 1, Long.MAX_VALUE);
    }

    static long parseBoundedLong(String key, Object value, long fallback, long min, long max) {
        if (value == null || value.toString().trim().isEmpty()) {
            return fallback;
        }
        long parsed;
        try {
            parsed = Long.parseLong(value.toString().trim());
        } catch (NumberFormatException e) {
            throw new ConfigException(key, value, "expected a whole number");
        }
        if (parsed < min || parsed > max) {
            throw new ConfigException(key, value, "expected a number from " + min + " to " + max);
        }
        return parsed;
    }

    static Map<String, Set<String>> parseSuperUsers(String key, Object value) {
        if (value == null) {
            return Map.of();
        }
        Map<String, Set<String>> byType = new HashMap<>();
        for (String raw : value.toString().split(";")) {
            String item = raw.trim();
            if (item.isEmpty()) {
                continue;
            }
            int colon = item.indexOf(':');
            if (colon <= 0 || colon == item.length() - 1) {
                throw new ConfigException(key, value, "`" + item + "` is not a principal of the form Type:name");
            }
            byType.computeIfAbsent(item.substring(0, colon), t -> new HashSet<>()).add(item.substring(colon + 1));
        }
        Map<String, Set<String>> frozen = new HashMap<>();
        byType.forEach((type, names) -> frozen.put(type, Set.copyOf(names)));
        return Map.copyOf(frozen);
    }

    private static Optional<Tls> parseTls(Map<String, ?> configs) {
        Optional<Path> ca = optionalFile(configs, TLS_CA_FILE_CONFIG);
        Optional<Path> cert = optionalFile(configs, TLS_CERT_FILE_CONFIG);
        Optional<Path> key = optionalFile(configs, TLS_KEY_FILE_CONFIG);
        if (cert.isPresent() != key.isPresent()) {
            String missing = cert.isPresent() ? TLS_KEY_FILE_CONFIG : TLS_CERT_FILE_CONFIG;
            throw new ConfigException(missing, null, "mutual TLS needs both " + TLS_CERT_FILE_CONFIG + " and "
                + TLS_KEY_FILE_CONFIG);
        }
        if (ca.isEmpty()) {
            if (cert.isPresent()) {
                throw new ConfigException(TLS_CA_FILE_CONFIG, null, "a client certificate needs the PDP's CA too");
            }
            return Optional.empty();
        }
        return Optional.of(new Tls(ca.get(), cert, key));
    }

    static Optional<Path> optionalFile(Map<String, ?> configs, String key) {
        String value = stringOr(configs, key, "");
        if (value.isEmpty()) {
            return Optional.empty();
        }
        Path path = Path.of(value);
        if (!Files.isReadable(path)) {
            throw new ConfigException(key, value, "file does not exist or is not readable");
        }
        return Optional.of(path);
    }

    @Override
    public String toString() {
        return "endpoints=" + endpoints + ", tls=" + (tls.isEmpty() ? "off" : tls.get().certFile().isPresent()
            ? "mutual" : "server-only") + ", deadline.ms=" + deadlineMs + ", start.timeout.ms=" + startTimeoutMs
            + ", cache.max.entries=" + cacheMaxEntries + ", cache.ttl.ms=" + cacheTtlMs + ", super.users="
            + superUsers() + ", node.id=" + brokerId;
    }
}
