package dev.kafkapdp.e2e.harness;

/**
 * A SASL/PLAIN user of the test broker, with a password made fresh for each run.
 *
 * @param name the user name; the Kafka principal is {@code User:<name>}
 * @param password the run's password
 */
public record TestUser(String name, String password) {

    /** A user with a random password. */
    public static TestUser named(String name) {
        return new TestUser(name, TlsMaterial.randomSecret());
    }

    /** The Kafka principal, as the authorizer sees it. */
    public String principal() {
        return "User:" + name;
    }

    /** The client side JAAS line that logs in as this user. */
    public String clientJaas() {
        return "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"" + name
                + "\" password=\"" + password + "\";";
    }

    @Override
    public String toString() {
        // Never print the password.
        return principal();
    }
}
