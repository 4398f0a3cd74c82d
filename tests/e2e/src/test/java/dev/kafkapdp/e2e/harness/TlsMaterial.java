package dev.kafkapdp.e2e.harness;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

/**
 * A self-signed broker certificate for {@code 127.0.0.1} and a truststore holding it, made with the JDK's
 * {@code keytool} at run time, with random store passwords. Nothing secret is ever committed.
 *
 * @param keystore PKCS12 keystore with the broker's key and certificate
 * @param keystorePassword its password (also the key's password)
 * @param truststore PKCS12 truststore with the broker's certificate, for clients
 * @param truststorePassword its password
 * @param certificate the broker's certificate as PEM, for clients that take a CA file rather than a truststore
 *     (librdkafka's {@code ssl.ca.location}); self-signed, so it is its own CA
 */
public record TlsMaterial(Path keystore, String keystorePassword, Path truststore, String truststorePassword,
        Path certificate) {

    private static final Duration KEYTOOL_TIMEOUT = Duration.ofSeconds(60);

    /** Generates the stores in {@code dir}. */
    public static TlsMaterial generate(Path dir) {
        String keyPassword = randomSecret();
        String trustPassword = randomSecret();
        Path keystore = dir.resolve("broker.keystore.p12");
        Path certificate = dir.resolve("broker.crt");
        Path truststore = dir.resolve("client.truststore.p12");

        keytool(dir, "genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
                "-dname", "CN=localhost,OU=kafka-pdp e2e", "-ext", "SAN=dns:localhost,ip:127.0.0.1",
                "-validity", "2", "-storetype", "PKCS12", "-keystore", keystore.toString(),
                "-storepass", keyPassword, "-keypass", keyPassword);
        keytool(dir, "exportcert", "-rfc", "-alias", "broker", "-keystore", keystore.toString(),
                "-storepass", keyPassword, "-file", certificate.toString());
        keytool(dir, "importcert", "-noprompt", "-alias", "broker", "-file", certificate.toString(),
                "-storetype", "PKCS12", "-keystore", truststore.toString(), "-storepass", trustPassword);
        return new TlsMaterial(keystore, keyPassword, truststore, trustPassword, certificate);
    }

    /** A random password, made fresh for every run. */
    public static String randomSecret() {
        byte[] bytes = new byte[12];
        new SecureRandom().nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

    private static void keytool(Path dir, String command, String... args) {
        List<String> line = new java.util.ArrayList<>();
        line.add(E2eEnvironment.keytool().toString());
        line.add("-" + command);
        line.addAll(List.of(args));
        ChildProcess.Result result = ChildProcess.run("keytool-" + command, line, dir, KEYTOOL_TIMEOUT);
        if (result.exitCode() != 0) {
            // The output never holds the passwords: keytool does not echo its arguments.
            throw new IllegalStateException("keytool -" + command + " failed with exit code " + result.exitCode()
                    + ":\n" + result.output());
        }
    }
}
