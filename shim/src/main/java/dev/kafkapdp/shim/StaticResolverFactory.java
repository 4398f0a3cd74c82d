package dev.kafkapdp.shim;

import java.net.InetSocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;

import io.grpc.Attributes;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.Status;

/**
 * Resolves the channel's target to the fixed list of PDP endpoints from {@code kafka.pdp.endpoints}.
 *
 * <p>Each endpoint becomes its own address group, so the load balancer keeps one subchannel per replica, reconnects
 * each with gRPC's exponential backoff and routes around the ones that are down. Host names are looked up again on
 * every {@link NameResolver#refresh()}, which gRPC calls when connections fail, so a replica that moved is found.
 * With TLS each group carries its own host as authority, so the certificate of each replica is checked against
 * the name it was configured under.
 */
final class StaticResolverFactory extends NameResolver.Factory {

    static final String SCHEME = "kafka-pdp";

    private final List<PdpConfig.Endpoint> endpoints;

    StaticResolverFactory(List<PdpConfig.Endpoint> endpoints) {
        this.endpoints = List.copyOf(endpoints);
    }

    /** The channel target that this factory resolves. */
    static String target() {
        return SCHEME + ":///pdp";
    }

    @Override
    public NameResolver newNameResolver(URI targetUri, NameResolver.Args args) {
        if (!SCHEME.equals(targetUri.getScheme())) {
            return null;
        }
        return new Resolver();
    }

    @Override
    public String getDefaultScheme() {
        return SCHEME;
    }

    private final class Resolver extends NameResolver {
        private Listener2 listener;

        @Override
        public String getServiceAuthority() {
            return endpoints.get(0).host();
        }

        @Override
        public void start(Listener2 listener) {
            this.listener = listener;
            resolve();
        }

        @Override
        public void refresh() {
            resolve();
        }

        @Override
        public void shutdown() {
        }

        private void resolve() {
            List<EquivalentAddressGroup> groups = new ArrayList<>();
            for (PdpConfig.Endpoint endpoint : endpoints) {
                InetSocketAddress address = new InetSocketAddress(endpoint.host(), endpoint.port());
                if (address.isUnresolved()) {
                    continue;
                }
                Attributes attrs = Attributes.newBuilder()
                    .set(EquivalentAddressGroup.ATTR_AUTHORITY_OVERRIDE, endpoint.host())
                    .build();
                groups.add(new EquivalentAddressGroup(address, attrs));
            }
            if (groups.isEmpty()) {
                listener.onError(Status.UNAVAILABLE.withDescription("no PDP endpoint resolves: " + endpoints));
                return;
            }
            listener.onResult(ResolutionResult.newBuilder().setAddresses(groups).build());
        }
    }
}
