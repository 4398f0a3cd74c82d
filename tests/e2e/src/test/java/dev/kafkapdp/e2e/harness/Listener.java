package dev.kafkapdp.e2e.harness;

/** The test broker's listeners. */
public enum Listener {
    /** KRaft controller traffic, SASL_PLAINTEXT as the broker principal; an early-start listener. */
    CONTROLLER("SASL_PLAINTEXT"),
    /** Inter-broker traffic, SASL_PLAINTEXT as the broker principal. */
    INTERNAL("SASL_PLAINTEXT"),
    /** Clients over SASL/PLAIN without TLS. */
    CLIENT("SASL_PLAINTEXT"),
    /** Clients over SASL/PLAIN inside TLS. */
    SECURE("SASL_SSL");

    private final String securityProtocol;

    Listener(String securityProtocol) {
        this.securityProtocol = securityProtocol;
    }

    public String securityProtocol() {
        return securityProtocol;
    }

    /** Kafka's lowercase form, used in {@code listener.name.<x>.} config prefixes. */
    public String configPrefix() {
        return "listener.name." + name().toLowerCase(java.util.Locale.ROOT) + ".";
    }
}
