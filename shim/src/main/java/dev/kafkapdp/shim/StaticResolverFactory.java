package dev.kafkapdp.shim;

import java.net.InetSocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

import io.grpc.Attributes;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.Status;
import io.grpc.SynchronizationContext;

/**
 * Resolves the channel's target to the fixed list of PDP endpoints from {@code kafka.pdp.endpoints}.
 *
 * <p>Each endpoint becomes its own address group, so the load balancer keeps one subchannel per replica, reconnects
 * each with gRPC's exponential backoff and routes around the ones that are down. Host names are looked up again on
 * every {@link NameResolver#refresh()}, which gRPC calls when connections fail, so a replica that moved is found.
 * With TLS each group carries its own host as authority, so the certificate of each replica is checked against
 * the name it was configured under.
 *
 * <p>Lookups run on the shim's scheduler thread, never on the thread that happens to wake the channel (which can be
 * a broker request thread), and their result is handed to gRPC on the channel's synchronization context.
 */
final class StaticResolverFactory extends NameResolver.Factory {

    static final String SCHEME = "kafka-pdp";

    private final List<PdpConfig.Endpoint> endpoints;
    private final Executor lookups;

    StaticResolverFactory(List<PdpConfig.Endpoint> endpoints, Executor lookups) {
        this.endpoints = List.copyOf(endpoints);
        this.lookups = lookups;
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
        return new Resolver(args.getSynchronizationContext());
    }

    @Override
    public String getDefaultScheme() {
        return SCHEME;
    }

    private final class Resolver extends NameResolver {
        private final SynchronizationContext syncContext;
        private Listener2 listener;
        private boolean resolving;

        Resolver(SynchronizationContext syncContext) {
            this.syncContext = syncContext;
        }

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

        /** Called on the synchronization context; at most one lookup runs at a time. */
        private void resolve() {
            if (resolving) {
                return;
            }
            resolving = true;
            try {
                lookups.execute(() -> {
                    Runnable deliver = lookUp();
                    syncContext.execute(() -> {
                        resolving = false;
                        deliver.run();
                    });
                });
            } catch (RejectedExecutionException e) {
                resolving = false; // the shim is closing
            }
        }

        private Runnable lookUp() {
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
                Status status = Status.UNAVAILABLE.withDescription("no PDP endpoint resolves: " + endpoints);
                return () -> listener.onError(status);
            }
            ResolutionResult result = ResolutionResult.newBuilder().setAddresses(groups).build();
            return () -> listener.onResult(result);
        }
    }
}
