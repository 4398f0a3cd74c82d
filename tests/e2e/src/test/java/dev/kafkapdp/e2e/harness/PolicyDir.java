package dev.kafkapdp.e2e.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.stream.Stream;

/**
 * The policy directory the PDP serves: the repository's {@code policies/schema.cedarschema} (copied, never
 * duplicated in this suite) plus the test policies, bindings and links under {@code src/test/resources/policies}.
 * Tests change policies while the PDP runs by writing and deleting files here.
 */
public final class PolicyDir implements AutoCloseable {

    private static final String RESOURCES = "policies";

    private final Path root;
    private final Path staging;

    private PolicyDir(Path root, Path staging) {
        this.root = root;
        this.staging = staging;
    }

    /** A fresh temporary directory with the schema and the suite's policies. */
    public static PolicyDir create() {
        try {
            Path parent = Files.createTempDirectory("kafka-pdp-e2e-policies-");
            Path root = Files.createDirectory(parent.resolve("policies"));
            Path staging = Files.createDirectory(parent.resolve("staging"));
            Files.copy(E2eEnvironment.cedarSchema(), root.resolve("schema.cedarschema"));
            copyTestPolicies(root);
            return new PolicyDir(root, staging);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the policy directory", e);
        }
    }

    public Path root() {
        return root;
    }

    /**
     * Puts {@code text} into {@code fileName} in one atomic rename, so that the PDP's file watcher never reads a
     * half-written policy.
     */
    public void write(String fileName, String text) {
        try {
            Path staged = staging.resolve(fileName);
            Files.writeString(staged, text, StandardCharsets.UTF_8);
            Files.move(staged, root.resolve(fileName), StandardCopyOption.ATOMIC_MOVE,
                    StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write policy `" + fileName + "`", e);
        }
    }

    /** Removes {@code fileName} from the served directory, if it is there. */
    public void delete(String fileName) {
        try {
            Files.deleteIfExists(root.resolve(fileName));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete policy `" + fileName + "`", e);
        }
    }

    @Override
    public void close() {
        BrokerProcess.deleteRecursively(root.getParent());
    }

    private static void copyTestPolicies(Path target) throws IOException {
        URL url = PolicyDir.class.getClassLoader().getResource(RESOURCES);
        if (url == null) {
            throw new IllegalStateException("test resource folder `" + RESOURCES + "` is not on the classpath");
        }
        Path source;
        try {
            source = Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException("cannot read `" + url + "`", e);
        }
        try (Stream<Path> files = Files.walk(source)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                Path destination = target.resolve(source.relativize(file).toString());
                if (Files.isDirectory(file)) {
                    Files.createDirectories(destination);
                } else {
                    Files.copy(file, destination, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }
}
