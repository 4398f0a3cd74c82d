package dev.kafkapdp.shim;

import java.io.IOException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.common.config.ConfigException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.kafkapdp.proto.v1.AuthorizeByResourceTypeRequest;
import dev.kafkapdp.proto.v1.AuthorizeByResourceTypeResponse;
import dev.kafkapdp.proto.v1.AuthorizeRequest;
import dev.kafkapdp.proto.v1.AuthorizeResponse;
import dev.kafkapdp.proto.v1.AuthorizerGrpc;
import dev.kafkapdp.proto.v1.PolicyVersion;
import dev.kafkapdp.proto.v1.WatchPolicyVersionRequest;
import io.grpc.ChannelCredentials;
import io.grpc.Context;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;

/**
 * The gRPC side of the shim: one channel over all PDP replicas, the two decision RPCs with a deadline, and the
 * policy-version stream kept open with backoff.
 *
 * <p>Failover: the channel round-robins over the replicas that are connected; a replica that goes away is skipped
 * and reconnected by gRPC with exponential backoff. A call that was in flight on it fails, and the caller denies.
 */
final class PdpClient implements AutoCloseable {

    /** Told about every version the stream reports and about every loss of the stream. */
    interface VersionListener {
        void onPolicyVersion(PolicyVersion version);

        void onStreamLost(Status status);
    }

    private static final Logger LOG = LoggerFactory.getLogger(PdpClient.class);
    private static final long CLOSE_AWAIT_MS = 5_000;

    private final PdpConfig config;
    private final ManagedChannel channel;
    private final AuthorizerGrpc.AuthorizerBlockingStub blocking;
    private final AuthorizerGrpc.AuthorizerStub async;
    private final ScheduledExecutorService scheduler;
    private final Backoff watchBackoff = new Backoff(100, 5_000);
    private final AtomicLong watchAttempt = new AtomicLong();
    private volatile Context.CancellableContext watchContext;
    private volatile boolean closed;
    /** Whether the stream has delivered a version since it was last (re)opened; only for log lines. */
    private volatile boolean streamUp;

    PdpClient(PdpConfig config, ScheduledExecutorService scheduler) {
        this.config = config;
        this.scheduler = scheduler;
        this.channel = buildChannel(config, scheduler);
        this.blocking = AuthorizerGrpc.newBlockingStub(channel);
        this.async = AuthorizerGrpc.newStub(channel);
    }

    /** One batched decision call; throws {@link io.grpc.StatusRuntimeException} on any failure or timeout. */
    AuthorizeResponse authorize(AuthorizeRequest request) {
        return blocking.withDeadlineAfter(config.deadlineMs(), TimeUnit.MILLISECONDS).authorize(request);
    }

    /** Kafka's by-resource-type question; throws {@link io.grpc.StatusRuntimeException} like {@link #authorize}. */
    AuthorizeByResourceTypeResponse authorizeByResourceType(AuthorizeByResourceTypeRequest request) {
        return blocking.withDeadlineAfter(config.deadlineMs(), TimeUnit.MILLISECONDS).authorizeByResourceType(request);
    }

    /** Opens the version stream and keeps it open (reopening with backoff) until {@link #close()}. */
    void watch(VersionListener listener) {
        if (closed) {
            return;
        }
        long attempt = watchAttempt.incrementAndGet();
        Context.CancellableContext previous = watchContext;
        if (previous != null) {
            previous.cancel(null); // the stream it carried has ended; release it
        }
        Context.CancellableContext context = Context.ROOT.withCancellation();
        watchContext = context;
        // Fail-fast on purpose: while no replica is reachable the call fails at once and the loop below retries
        // with its own short backoff, resetting gRPC's connect backoff (which grows to minutes) each time.
        context.run(() -> async
            .watchPolicyVersion(WatchPolicyVersionRequest.getDefaultInstance(), new Watcher(listener, attempt)));
    }

    private final class Watcher implements StreamObserver<PolicyVersion> {
        private final VersionListener listener;
        private final long attempt;

        Watcher(VersionListener listener, long attempt) {
            this.listener = listener;
            this.attempt = attempt;
        }

        @Override
        public void onNext(PolicyVersion version) {
            watchBackoff.reset();
            if (!streamUp) {
                streamUp = true;
                LOG.info("policy-version stream to the PDP is open");
            }
            listener.onPolicyVersion(version);
        }

        @Override
        public void onError(Throwable t) {
            lost(Status.fromThrowable(t));
        }

        @Override
        public void onCompleted() {
            lost(Status.UNAVAILABLE.withDescription("the PDP ended the policy-version stream"));
        }

        private void lost(Status status) {
            if (closed || attempt != watchAttempt.get()) {
                return;
            }
            listener.onStreamLost(status);
            long delay = watchBackoff.next();
            if (streamUp) {
                streamUp = false;
                LOG.warn("policy-version stream to the PDP lost ({}: {}); cached decisions dropped, retrying every "
                    + "few seconds", status.getCode(), status.getDescription());
            } else {
                LOG.debug("PDP still unreachable ({}); retrying in {} ms", status.getCode(), delay);
            }
            scheduler.schedule(() -> {
                channel.resetConnectBackoff();
                watch(listener);
            }, delay, TimeUnit.MILLISECONDS);
        }
    }

    @Override
    public void close() {
        closed = true;
        Context.CancellableContext context = watchContext;
        if (context != null) {
            context.cancel(null);
        }
        channel.shutdown();
        try {
            if (!channel.awaitTermination(CLOSE_AWAIT_MS, TimeUnit.MILLISECONDS)) {
                channel.shutdownNow();
            }
        } catch (InterruptedException e) {
            channel.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }

    @SuppressWarnings("deprecation") // nameResolverFactory: the simplest way to give one channel a fixed list
    private static ManagedChannel buildChannel(PdpConfig config, ScheduledExecutorService scheduler) {
        ChannelCredentials credentials = credentials(config);
        try {
            return NettyChannelBuilder.forTarget(StaticResolverFactory.target(), credentials)
                .nameResolverFactory(new StaticResolverFactory(config.endpoints(), scheduler))
                .defaultLoadBalancingPolicy("round_robin")
                .keepAliveTime(30, TimeUnit.SECONDS)
                .keepAliveTimeout(10, TimeUnit.SECONDS)
                .userAgent("kafka-pdp-shim")
                .build();
        } catch (RuntimeException e) {
            // Netty parses the PEM files here; a bad certificate or a key that is not PKCS#8 fails now.
            String files = config.tls().map(Object::toString).orElse("(none)");
            throw new ConfigException(PdpConfig.TLS_CERT_FILE_CONFIG, files,
                "cannot set up TLS to the PDP: " + e.getMessage());
        }
    }

    private static ChannelCredentials credentials(PdpConfig config) {
        if (config.tls().isEmpty()) {
            return InsecureChannelCredentials.create();
        }
        PdpConfig.Tls tls = config.tls().get();
        try {
            TlsChannelCredentials.Builder builder = TlsChannelCredentials.newBuilder()
                .trustManager(tls.caFile().toFile());
            if (tls.certFile().isPresent()) {
                builder.keyManager(tls.certFile().get().toFile(), tls.keyFile().orElseThrow().toFile());
            }
            return builder.build();
        } catch (IOException | IllegalArgumentException e) {
            throw new ConfigException(PdpConfig.TLS_CA_FILE_CONFIG, tls.caFile().toString(),
                "cannot load the TLS files: " + e.getMessage());
        }
    }
}
