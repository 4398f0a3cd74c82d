package dev.kafkapdp.e2e.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the suite finds what it runs: the PDP binary, the shim jar, the broker's jars and the repository's
 * schema, all handed over by Maven as system properties (see {@code pom.xml}).
 *
 * <p>A missing or unreadable input is an error with the property name in it, never a skipped test: a suite that
 * quietly ran nothing would look green.
 */
public final class E2eEnvironment {

    /** System property: path to the {@code kafka-pdp} binary. */
    public static final String PDP_BINARY_PROPERTY = "pdp.binary";
    /** System property: path to the shaded shim jar. */
    public static final String SHIM_JAR_PROPERTY = "shim.jar";

    private E2eEnvironment() {
    }

    /** The {@code kafka-pdp} binary, which must exist and be executable. */
    public static Path pdpBinary() {
        Path binary = requiredPath(PDP_BINARY_PROPERTY, "the kafka-pdp binary (cargo build -p kafka-pdp)");
        if (!Files.isExecutable(binary)) {
            throw new IllegalStateException("-D" + PDP_BINARY_PROPERTY + "=`" + binary + "` is not executable");
        }
        return binary;
    }

    /** The shaded jar holding {@code dev.kafkapdp.shim.PdpAuthorizer}. */
    public static Path shimJar() {
        return requiredPath(SHIM_JAR_PROPERTY, "the shaded shim jar (cd shim && mvn -B package)");
    }

    /** The folder the dependency plugin filled with Kafka's jars and a log4j2 binding. */
    public static Path kafkaLibs() {
        Path libs = requiredPath("e2e.kafka.libs", "target/kafka-libs, filled by `mvn verify`");
        if (!Files.isDirectory(libs)) {
            throw new IllegalStateException("`" + libs + "` is not a directory; run the suite through `mvn verify`");
        }
        return libs;
    }

    /** The repository's Cedar schema, copied into every policy directory the suite serves. */
    public static Path cedarSchema() {
        Path root = requiredPath("e2e.repo.root", "the repository root");
        Path schema = root.resolve("policies").resolve("schema.cedarschema");
        if (!Files.isRegularFile(schema)) {
            throw new IllegalStateException("the Cedar schema is missing at `" + schema + "`");
        }
        return schema;
    }

    /** Where the broker's and the PDP's output is kept for reading after a failure. */
    public static Path logsDir() {
        String configured = System.getProperty("e2e.logs");
        Path dir = configured == null || configured.isBlank() ? Path.of("target", "e2e-logs") : Path.of(configured);
        try {
            return Files.createDirectories(dir.toAbsolutePath().normalize());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the log folder `" + dir + "`", e);
        }
    }

    /** The {@code java} launcher of the JVM running the tests, reused for the broker and the admin tools. */
    public static Path javaLauncher() {
        return Path.of(System.getProperty("java.home"), "bin", "java");
    }

    /** The {@code keytool} of the JVM running the tests. */
    public static Path keytool() {
        return Path.of(System.getProperty("java.home"), "bin", "keytool");
    }

    /**
     * Reads a path property and checks the file exists. Relative paths are taken from the folder where
     * {@code mvn} was started, since that is how the person typing the command means them.
     */
    private static Path requiredPath(String property, String what) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            throw new IllegalStateException("-D" + property + " is not set; it must point to " + what);
        }
        Path path = Path.of(value);
        if (!path.isAbsolute()) {
            String invocationDir = System.getProperty("e2e.invocation.dir");
            path = invocationDir == null ? path.toAbsolutePath() : Path.of(invocationDir).resolve(path);
        }
        path = path.normalize();
        if (!Files.exists(path)) {
            throw new IllegalStateException("-D" + property + "=`" + value + "` does not exist (resolved to `"
                    + path + "`); it must point to " + what);
        }
        return path;
    }
}
