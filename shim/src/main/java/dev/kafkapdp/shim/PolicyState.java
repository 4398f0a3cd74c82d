package dev.kafkapdp.shim;

/**
 * The policy version the PDP last reported on its version stream.
 *
 * @param version content hash of the active policy set; empty while unknown (before the first report, or after
 *                the stream was lost)
 * @param activatedAtMs when the PDP made it active, in unix milliseconds; 0 while unknown
 */
record PolicyState(String version, long activatedAtMs) {

    static final PolicyState UNKNOWN = new PolicyState("", 0);

    boolean known() {
        return !version.isEmpty();
    }
}
