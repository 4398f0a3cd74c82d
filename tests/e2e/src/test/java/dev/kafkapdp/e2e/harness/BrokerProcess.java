package dev.kafkapdp.e2e.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;

/**
 * One real Kafka 4.4 broker in KRaft combined mode ({@code process.roles=broker,controller}), run as its own
 * {@code java} process from the jars in {@code target/kafka-libs} plus whatever the settings add (the shim).
 *
 * <p>Four listeners on free loopback ports: {@code CONTROLLER} and {@code INTERNAL} carry the broker's own
 * traffic as {@code User:broker}, the one super user; {@code CLIENT} (SASL_PLAINTEXT) and {@code SECURE}
 * (SASL_SSL, with a certificate made for this run) serve the tests' clients. The controller listener uses
 * SASL too, rather than PLAINTEXT, so that the broker registering with its controller is {@code User:broker}
 * and answered as a super user, not {@code User:ANONYMOUS} asking the authorizer.
 *
 * <p>Data lives in a temporary folder removed on {@link #close()}; configuration and logs stay under
 * {@code target/e2e-logs/<name>/} for reading after a failure. JMX listens on a loopback port for
 * {@link BrokerMetrics}.
 */
public final class BrokerProcess implements AutoCloseable {

    private static final Duration STARTUP_DEADLINE = Duration.ofSeconds(120);
    private static final Duration FORMAT_TIMEOUT = Duration.ofSeconds(120);
    private static final Duration STOP_GRACE = Duration.ofSeconds(10);

    /**
     * What differs between brokers of the suite.
     *
     * @param name folder and log name, such as {@code shim-broker}
     * @param authorizerClass value of {@code authorizer.class.name}
     * @param authorizerConfig further broker settings for the authorizer (the {@code kafka.pdp.*} keys)
     * @param extraClasspath jars added to the broker's classpath (the shim)
     * @param brokerUser the inter-broker and controller principal, the only super user
     * @param clientUsers users that may log in on the client listeners
     */
    public record Settings(String name, String authorizerClass, Map<String, String> authorizerConfig,
            List<Path> extraClasspath, TestUser brokerUser, List<TestUser> clientUsers) {
    }

    private final Settings settings;
    private final Path dataDir;
    private final Path logDir;
    private final Map<Listener, Integer> ports;
    private final TlsMaterial tls;
    private final int jmxPort;
    private ChildProcess process;

    private BrokerProcess(Settings settings, Path dataDir, Path logDir, Map<Listener, Integer> ports,
            TlsMaterial tls, int jmxPort) {
        this.settings = settings;
        this.dataDir = dataDir;
        this.logDir = logDir;
        this.ports = ports;
        this.tls = tls;
        this.jmxPort = jmxPort;
    }

    /** Writes the configuration, formats the storage, starts the broker and waits until every listener answers. */
    public static BrokerProcess start(Settings settings) {
        BrokerProcess broker = startWithoutClients(settings);
        try {
            broker.awaitListener(Listener.CLIENT, settings.clientUsers().get(0), STARTUP_DEADLINE);
            broker.awaitListener(Listener.SECURE, settings.clientUsers().get(0), STARTUP_DEADLINE);
            return broker;
        } catch (RuntimeException | Error e) {
            broker.close();
            throw e;
        }
    }

    /**
     * Like {@link #start}, but waits only for the broker's own listeners (controller and inter-broker), which the
     * authorizer must open without the PDP; the client listeners may still be waiting for it.
     */
    public static BrokerProcess startWithoutClients(Settings settings) {
        BrokerProcess broker = null;
        try {
            Path logDir = Files.createDirectories(E2eEnvironment.logsDir().resolve(settings.name()));
            Path dataDir = Files.createTempDirectory("kafka-pdp-e2e-" + settings.name() + "-");
            Map<Listener, Integer> ports = new EnumMap<>(Listener.class);
            for (Listener listener : Listener.values()) {
                ports.put(listener, Ports.free());
            }
            broker = new BrokerProcess(settings, dataDir, logDir, ports, TlsMaterial.generate(dataDir),
                    Ports.free());
            broker.launch();
            broker.awaitListener(Listener.INTERNAL, settings.brokerUser(), STARTUP_DEADLINE);
            return broker;
        } catch (IOException e) {
            closeQuietly(broker);
            throw new UncheckedIOException("cannot prepare broker " + settings.name(), e);
        } catch (RuntimeException | Error e) {
            closeQuietly(broker);
            throw e;
        }
    }

    private static void closeQuietly(BrokerProcess broker) {
        if (broker != null) {
            broker.close();
        }
    }

    private void launch() throws IOException {
        // Appended to, never truncated by log4j: Kafka re-initializes logging while shutting down, and a
        // truncating appender would then wipe the log. A new run starts from an empty file instead.
        Files.deleteIfExists(logDir.resolve("server.log"));
        Path properties = logDir.resolve("server.properties");
        Files.writeString(properties, render(serverProperties()), StandardCharsets.UTF_8);
        Path log4j = logDir.resolve("log4j2.properties");
        Files.writeString(log4j, log4jConfig(), StandardCharsets.UTF_8);
        restrictToOwner(properties);

        format(properties);
        List<String> command = new ArrayList<>(javaCommand(log4j));
        command.addAll(jmxOptions());
        command.add("kafka.Kafka");
        command.add(properties.toString());
        Files.deleteIfExists(logDir.resolve("stdout.log"));
        Files.deleteIfExists(logDir.resolve("stderr.log"));
        process = ChildProcess.start(settings.name(), command, dataDir, logDir.resolve("stdout.log"),
                logDir.resolve("stderr.log"));
    }

    /** {@code host:port} of a listener, for {@code bootstrap.servers}. */
    public String bootstrap(Listener listener) {
        return "127.0.0.1:" + ports.get(listener);
    }

    /** The certificate material of the SASL_SSL listener. */
    public TlsMaterial tls() {
        return tls;
    }

    public Settings settings() {
        return settings;
    }

    public boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** Client settings that log {@code user} in on {@code listener}, with short timeouts so failures are quick. */
    public Map<String, Object> clientConfig(TestUser user, Listener listener) {
        Map<String, Object> config = new HashMap<>();
        config.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap(listener));
        config.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, listener.securityProtocol());
        config.put(SaslConfigs.SASL_MECHANISM, "PLAIN");
        config.put(SaslConfigs.SASL_JAAS_CONFIG, user.clientJaas());
        config.put(CommonClientConfigs.CLIENT_ID_CONFIG, "e2e-" + user.name());
        config.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        config.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        if (listener == Listener.SECURE) {
            config.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, tls.truststore().toString());
            config.put(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG, tls.truststorePassword());
            config.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, "PKCS12");
        }
        return config;
    }

    /** An admin client for the super user, over the inter-broker listener: for setting up test topics. */
    public Admin superAdmin() {
        return Admin.create(clientConfig(settings.brokerUser(), Listener.INTERNAL));
    }

    /** The last lines of the broker's log and output, for a failure message. */
    public String logTail(int lines) {
        return ChildProcess.tail(logDir.resolve("server.log"), lines)
                + ChildProcess.tail(logDir.resolve("stdout.log"), lines / 4)
                + ChildProcess.tail(logDir.resolve("stderr.log"), lines / 4);
    }

    /** Where this broker's configuration and logs are kept. */
    public Path logDir() {
        return logDir;
    }

    @Override
    public void close() {
        if (process != null) {
            process.stop(STOP_GRACE);
        }
        deleteRecursively(dataDir);
    }

    // === configuration ===

    private Map<String, String> serverProperties() {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("process.roles", "broker,controller");
        p.put("node.id", "1");
        p.put("controller.quorum.bootstrap.servers", bootstrap(Listener.CONTROLLER));
        p.put("controller.listener.names", Listener.CONTROLLER.name());
        p.put("listeners", joinListeners(List.of(Listener.values())));
        p.put("advertised.listeners", joinListeners(List.of(Listener.values())));
        p.put("listener.security.protocol.map", protocolMap());
        p.put("inter.broker.listener.name", Listener.INTERNAL.name());
        p.put("sasl.enabled.mechanisms", "PLAIN");
        p.put("sasl.mechanism.controller.protocol", "PLAIN");
        p.put("sasl.mechanism.inter.broker.protocol", "PLAIN");
        p.put(Listener.CONTROLLER.configPrefix() + "plain.sasl.jaas.config", brokerJaas());
        p.put(Listener.INTERNAL.configPrefix() + "plain.sasl.jaas.config", brokerJaas());
        p.put(Listener.CLIENT.configPrefix() + "plain.sasl.jaas.config", clientListenerJaas());
        p.put(Listener.SECURE.configPrefix() + "plain.sasl.jaas.config", clientListenerJaas());
        p.put(Listener.SECURE.configPrefix() + "ssl.keystore.type", "PKCS12");
        p.put(Listener.SECURE.configPrefix() + "ssl.keystore.location", tls.keystore().toString());
        p.put(Listener.SECURE.configPrefix() + "ssl.keystore.password", tls.keystorePassword());
        p.put(Listener.SECURE.configPrefix() + "ssl.key.password", tls.keystorePassword());

        p.put("log.dirs", dataDir.resolve("data").toString());
        p.put("auto.create.topics.enable", "false");
        p.put("num.partitions", "1");
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "3");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("transaction.state.log.num.partitions", "3");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("group.initial.rebalance.delay.ms", "0");
        p.put("num.network.threads", "2");
        p.put("num.io.threads", "4");

        p.put("authorizer.class.name", settings.authorizerClass());
        p.put("super.users", settings.brokerUser().principal());
        p.putAll(settings.authorizerConfig());
        return p;
    }

    private String joinListeners(List<Listener> listeners) {
        return listeners.stream()
                .map(l -> l.name() + "://" + bootstrap(l))
                .collect(Collectors.joining(","));
    }

    private static String protocolMap() {
        return java.util.Arrays.stream(Listener.values())
                .map(l -> l.name() + ":" + l.securityProtocol())
                .collect(Collectors.joining(","));
    }

    /** Server and client side of the broker's own connections: it logs in as, and accepts, the broker user. */
    private String brokerJaas() {
        TestUser broker = settings.brokerUser();
        return "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"" + broker.name()
                + "\" password=\"" + broker.password() + "\" user_" + broker.name() + "=\"" + broker.password()
                + "\";";
    }

    private String clientListenerJaas() {
        StringBuilder jaas = new StringBuilder("org.apache.kafka.common.security.plain.PlainLoginModule required");
        for (TestUser user : settings.clientUsers()) {
            jaas.append(" user_").append(user.name()).append("=\"").append(user.password()).append('"');
        }
        return jaas.append(';').toString();
    }

    private String log4jConfig() {
        String file = logDir.resolve("server.log").toString().replace("\\", "/");
        return String.join("\n",
                "status = warn",
                "appender.file.type = File",
                "appender.file.name = FILE",
                "appender.file.fileName = " + file,
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = [%d] %p [%t] %m (%c)%n",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.file.ref = FILE",
                // Kafka's own authorizer logger: denials at INFO, enough to see what the broker asked.
                "logger.authorizer.name = kafka.authorizer.logger",
                "logger.authorizer.level = INFO",
                "logger.shim.name = dev.kafkapdp",
                "logger.shim.level = DEBUG",
                // The shim's relocated gRPC and Netty: their DEBUG output would drown the shim's own.
                "logger.pdpshaded.name = dev.kafkapdp.shaded",
                "logger.pdpshaded.level = INFO",
                "");
    }

    private static String render(Map<String, String> properties) {
        StringBuilder out = new StringBuilder("# Written by the kafka-pdp end-to-end harness for one run.\n");
        properties.forEach((key, value) -> out.append(key).append('=').append(escape(value)).append('\n'));
        return out.toString();
    }

    /** Escapes a value for a {@code .properties} file. */
    private static String escape(String value) {
        return value.replace("\\", "\\\\").replace("\n", "\\n");
    }

    // === process ===

    private List<String> javaCommand(Path log4j) {
        List<String> classpath = new ArrayList<>();
        classpath.add(E2eEnvironment.kafkaLibs().resolve("*").toString());
        settings.extraClasspath().forEach(jar -> classpath.add(jar.toString()));
        return List.of(E2eEnvironment.javaLauncher().toString(),
                "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                "-Dlog4j2.configurationFile=" + log4j,
                "-Dkafka.logs.dir=" + logDir,
                "-cp", String.join(java.io.File.pathSeparator, classpath));
    }

    /**
     * JMX on loopback without authentication, for reading the shim's plug-in metrics from the tests. Acceptable
     * only because the port is on 127.0.0.1 and the broker lives for one test run.
     */
    private List<String> jmxOptions() {
        return List.of("-Dcom.sun.management.jmxremote.port=" + jmxPort,
                "-Dcom.sun.management.jmxremote.rmi.port=" + jmxPort,
                "-Dcom.sun.management.jmxremote.host=127.0.0.1",
                "-Djava.rmi.server.hostname=127.0.0.1",
                "-Dcom.sun.management.jmxremote.authenticate=false",
                "-Dcom.sun.management.jmxremote.ssl=false");
    }

    /** The broker's JMX endpoint, for {@link BrokerMetrics}. */
    public String jmxUrl() {
        return "service:jmx:rmi:///jndi/rmi://127.0.0.1:" + jmxPort + "/jmxrmi";
    }

    private void format(Path properties) {
        List<String> command = new ArrayList<>(javaCommand(logDir.resolve("log4j2.properties")));
        command.addAll(List.of("kafka.tools.StorageTool", "format", "--cluster-id", Uuid.randomUuid().toString(),
                "--config", properties.toString(), "--standalone"));
        ChildProcess.Result result = ChildProcess.run("storage-format", command, logDir, FORMAT_TIMEOUT);
        if (result.exitCode() != 0) {
            throw new IllegalStateException("kafka-storage format failed with exit code " + result.exitCode()
                    + ":\n" + result.output());
        }
    }

    /**
     * Polls {@code listener} as {@code user} until it answers a DescribeCluster, which needs no authorization. A
     * client listener only opens once the authorizer's start future for it completes, which for the shim means
     * the PDP was reached; the broker exiting meanwhile fails at once, with its log.
     */
    public void awaitListener(Listener listener, TestUser user, Duration deadline) {
        try (Admin admin = Admin.create(readinessConfig(user, listener))) {
            Poll.until("broker listener " + listener + " of " + settings.name(), deadline, () -> {
                if (!process.isAlive()) {
                    throw new AssertionError("broker " + settings.name() + " exited with code "
                            + process.process().exitValue());
                }
                return !admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).isEmpty();
            });
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\n" + logTail(80), e);
        }
    }

    private Map<String, Object> readinessConfig(TestUser user, Listener listener) {
        Map<String, Object> config = clientConfig(user, listener);
        config.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, 4_000);
        config.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, 5_000);
        config.put(CommonClientConfigs.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        config.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, 500);
        return config;
    }

    // === files ===

    private static void restrictToOwner(Path file) {
        try {
            Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        } catch (IOException | UnsupportedOperationException e) {
            // Best effort: the file holds only this run's throwaway passwords.
        }
    }

    static void deleteRecursively(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (var paths = Files.walk(dir)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove `" + dir + "`", e);
        }
    }
}
