package dev.kafkapdp.e2e.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import javax.management.JMException;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * The shim's plug-in metrics, read over JMX from the running broker as an operator's monitoring would. Kafka
 * publishes them under {@code kafka.server:type=plugins,config=authorizer.class.name,class=PdpAuthorizer}, one
 * set per authorizer instance, tagged {@code role=broker} or {@code role=controller} in combined mode.
 */
public final class BrokerMetrics implements AutoCloseable {

    private static final String PLUGIN_BEANS = "kafka.server:type=plugins,class=PdpAuthorizer,*";

    private final JMXConnector connector;
    private final MBeanServerConnection server;

    private BrokerMetrics(JMXConnector connector) throws IOException {
        this.connector = connector;
        this.server = connector.getMBeanServerConnection();
    }

    /** Connects to {@code broker}'s JMX endpoint. */
    public static BrokerMetrics connect(BrokerProcess broker) {
        try {
            return new BrokerMetrics(JMXConnectorFactory.connect(new JMXServiceURL(broker.jmxUrl())));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot reach the broker's JMX at " + broker.jmxUrl(), e);
        }
    }

    /**
     * A numeric metric of the broker-role authorizer, the one that answers client requests.
     *
     * @param attribute the metric name, such as {@code fail-closed-total}
     * @param tags further tags that pick the bean, such as {@code reason=unavailable}; none for untagged metrics
     */
    public double brokerValue(String attribute, Map<String, String> tags) {
        try {
            for (ObjectName name : server.queryNames(new ObjectName(PLUGIN_BEANS), null)) {
                if (!"broker".equals(name.getKeyProperty("role")) || !matches(name, tags)) {
                    continue;
                }
                Object value = server.getAttribute(name, attribute);
                return ((Number) value).doubleValue();
            }
        } catch (JMException e) {
            throw new IllegalStateException("cannot read `" + attribute + "` " + tags + " over JMX", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read `" + attribute + "` " + tags + " over JMX", e);
        }
        throw new AssertionError("no PdpAuthorizer metric `" + attribute + "` " + tags + " in JMX; beans present: "
                + describeBeans());
    }

    /** A numeric metric of the broker-role authorizer summed over all its tags, such as every fail-closed reason. */
    public double brokerTotal(String attribute) {
        double total = 0;
        boolean found = false;
        try {
            for (ObjectName name : server.queryNames(new ObjectName(PLUGIN_BEANS), null)) {
                if (!"broker".equals(name.getKeyProperty("role"))) {
                    continue;
                }
                try {
                    total += ((Number) server.getAttribute(name, attribute)).doubleValue();
                    found = true;
                } catch (javax.management.AttributeNotFoundException notOnThisBean) {
                    // Each bean holds the metrics of one tag combination; this one has others.
                }
            }
        } catch (JMException e) {
            throw new IllegalStateException("cannot read `" + attribute + "` over JMX", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read `" + attribute + "` over JMX", e);
        }
        if (!found) {
            throw new AssertionError("no PdpAuthorizer metric `" + attribute + "` in JMX; beans present: "
                    + describeBeans());
        }
        return total;
    }

    private static boolean matches(ObjectName name, Map<String, String> tags) {
        Map<String, String> properties = name.getKeyPropertyList();
        Set<String> required = tags.keySet();
        for (String key : required) {
            if (!tags.get(key).equals(properties.get(key))) {
                return false;
            }
        }
        // An untagged metric lives on the bean that has no tags besides the plug-in's own.
        return !tags.isEmpty() || properties.keySet().stream()
                .allMatch(key -> Set.of("type", "config", "class", "role").contains(key));
    }

    private String describeBeans() {
        try {
            Map<String, String> beans = new TreeMap<>();
            for (ObjectName name : server.queryNames(new ObjectName(PLUGIN_BEANS), null)) {
                beans.put(name.toString(), "");
            }
            return beans.keySet().toString();
        } catch (JMException | IOException e) {
            return "(cannot list: " + e + ")";
        }
    }

    @Override
    public void close() {
        try {
            connector.close();
        } catch (IOException e) {
            // Closing a JMX connection to a broker that is going away anyway; nothing to do.
        }
    }
}
