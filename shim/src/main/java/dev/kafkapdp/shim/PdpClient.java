package dev.kafkapdp.shim;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
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
import dev.kafkapdp.proto.v1.ReportCachedDecisionsRequest;
import dev.kafkapdp.proto.v1.ReportCachedDecisionsResponse;
import dev.kafkapdp.proto.v1.WatchPolicyVersionRequest;
import io.grpc.ChannelCredentials;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.stub.StreamObserver;

/**
 * The gRPC side of the shim: one channel per PDP replica, the two decision RPCs with a deadline, and the
 * policy-version stream kept open with backoff.
 *
 * <p>Failover: one channel per replica. Decision calls are spread round-robin over the replicas that are connected
 * (then the others). A call that fails with UNAVAILABLE (the connection broke or could not be made) is tried again on
 * the next replica within the same deadline, at most once per other replica; only when the deadline passes or every
 * replica failed does the caller deny. A replica that goes away is reconnected by gRPC with exponential backoff.
 * The version stream is held to one replica at a time and moves to the next one each time it is reopened.
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
    private final List<Replica> replicas;
    private final AtomicInteger nextReplica = new AtomicInteger();
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
        List<Replica> built = new ArrayList<>();
        try {
            for (PdpConfig.Endpoint endpoint : config.endpoints()) {
                built.add(new Replica(buildChannel(config, endpoint, scheduler)));
            }
        } catch (RuntimeException e) {
            built.forEach(replica -> replica.channel.shutdownNow());
            throw e;
        }
        this.replicas = List.copyOf(built);
        LOG.info("channels to the PDP run on Netty's {} transport", transport());
    }

    /** Netty's native epoll transport when its library loads (Linux), else NIO, and why. */
    static String transport() {
        return Epoll.isAvailable() ? "epoll" : "NIO (native epoll unavailable: " + Epoll.unavailabilityCause() + ")";
    }

    /** One PDP replica: its own channel and stubs. */
    private static final class Replica {
        final ManagedChannel channel;
        final AuthorizerGrpc.AuthorizerBlockingStub blocking;
        final AuthorizerGrpc.AuthorizerStub async;

        Replica(ManagedChannel channel) {
            this.channel = channel;
            this.blocking = AuthorizerGrpc.newBlockingStub(channel);
            this.async = AuthorizerGrpc.newStub(channel);
        }
    }

    /** One batched decision call; throws {@link StatusRuntimeException} on any failure or timeout. */
    AuthorizeResponse authorize(AuthorizeRequest request) {
        return withFailover(stub -> stub.authorize(request));
    }

    /** Kafka's by-resource-type question; throws {@link StatusRuntimeException} like {@link #authorize}. */
    AuthorizeByResourceTypeResponse authorizeByResourceType(AuthorizeByResourceTypeRequest request) {
        return withFailover(stub -> stub.authorizeByResourceType(request));
    }

    /**
     * Hands audit records of cache answers to the PDP; throws {@link StatusRuntimeException} like
     * {@link #authorize}. Off the request path, so it waits longer than a decision: {@code deadlineMs}.
     */
    ReportCachedDecisionsResponse reportCachedDecisions(ReportCachedDecisionsRequest request, long deadlineMs) {
        return withFailover(stub -> stub.reportCachedDecisions(request), deadlineMs);
    }

    private <T> T withFailover(Function<AuthorizerGrpc.AuthorizerBlockingStub, T> rpc) {
        return withFailover(rpc, config.deadlineMs());
    }

    /**
     * Makes the call on one replica after the other, connected ones first in round-robin order, under one deadline
     * of {@code deadlineMs} (for decisions, {@code kafka.pdp.deadline.ms}) for all attempts. Only UNAVAILABLE moves
     * on to the next replica: any other failure (an error status, the deadline) is final, and so is UNAVAILABLE from
     * the last replica.
     */
    private <T> T withFailover(Function<AuthorizerGrpc.AuthorizerBlockingStub, T> rpc, long deadlineMs) {
        Deadline deadline = Deadline.after(deadlineMs, TimeUnit.MILLISECONDS);
        List<Replica> untried = attemptOrder();
        StatusRuntimeException last = null;
        while (!untried.isEmpty() && !deadline.isExpired()) {
            Replica replica = awaitConnected(untried, deadline);
            if (replica == null) {
                last = Status.UNAVAILABLE.withDescription("no PDP replica could be connected").asRuntimeException();
                break;
            }
            untried.remove(replica);
            try {
                return rpc.apply(replica.blocking.withDeadline(deadline));
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
                    throw e;
                }
                last = e;
            }
        }
        if (last != null) {
            throw last;
        }
        throw Status.DEADLINE_EXCEEDED.withDescription("no replica answered within " + deadlineMs + " ms")
            .asRuntimeException();
    }

    /**
     * The first of {@code candidates} whose channel is connected, connecting them all and waiting, within the
     * deadline, for the first to get there; {@code null} when the deadline passes or every one has tried and failed.
     * A channel waiting out gRPC's reconnect backoff (a replica that was down and may be back, as after a restart)
     * is made to try at once. Waiting on all of them at once matters: a replica that has just gone is seen to go at
     * once (on Netty's native epoll especially) and reconnected to, and a wait for that attempt alone could use up
     * the deadline while another replica connects. A refused connection is known in about a millisecond on a local
     * network, so a replica that is down costs little. Known shortcomings: a channel whose attempt fails before its
     * new state is read looks as if it never tried, so when no replica can connect the call waits until the
     * deadline; and while replicas are down every call starts a connection attempt to them, so their connect
     * backoff does not hold.
     */
    private static Replica awaitConnected(List<Replica> candidates, Deadline deadline) {
        int count = candidates.size();
        boolean[] attempted = new boolean[count];
        boolean[] kicked = new boolean[count];
        try {
            while (true) {
                ConnectivityState[] states = new ConnectivityState[count];
                for (int i = 0; i < count; i++) {
                    states[i] = candidates.get(i).channel.getState(true);
                    if (states[i] == ConnectivityState.READY) {
                        return candidates.get(i);
                    }
                }
                CountDownLatch changed = new CountDownLatch(1);
                boolean waiting = false;
                for (int i = 0; i < count; i++) {
                    ManagedChannel channel = candidates.get(i).channel;
                    if (states[i] != ConnectivityState.TRANSIENT_FAILURE) {
                        attempted[i] = true;
                    } else if (attempted[i]) {
                        continue; // it tried since the wait began, and failed
                    } else if (!kicked[i]) {
                        // Not resetConnectBackoff(): pick_first stays in TRANSIENT_FAILURE ("sticky") and did not
                        // reconnect at once on it in the end-to-end test. Going idle drops the backoff state; the
                        // next getState(true) connects.
                        kicked[i] = true;
                        channel.enterIdle();
                        states[i] = channel.getState(true);
                    }
                    channel.notifyWhenStateChanged(states[i], changed::countDown);
                    waiting = true;
                }
                long left = deadline.timeRemaining(TimeUnit.NANOSECONDS);
                if (!waiting || left <= 0 || !changed.await(left, TimeUnit.NANOSECONDS)) {
                    return null;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /**
     * Every replica once, in a list of its own: the connected ones from the round-robin position on, then the rest
     * in the same order.
     */
    private List<Replica> attemptOrder() {
        int count = replicas.size();
        if (count == 1) {
            return new ArrayList<>(replicas);
        }
        int start = Math.floorMod(nextReplica.getAndIncrement(), count);
        List<Replica> ready = new ArrayList<>(count);
        List<Replica> others = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            Replica replica = replicas.get((start + i) % count);
            // getState(true) also starts connecting an idle channel, so that it is ready for a later call.
            (replica.channel.getState(true) == ConnectivityState.READY ? ready : others).add(replica);
        }
        ready.addAll(others);
        return ready;
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
        Replica replica = replicas.get((int) Math.floorMod(attempt, (long) replicas.size()));
        context.run(() -> replica.async
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
                replicas.forEach(replica -> replica.channel.resetConnectBackoff());
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
        replicas.forEach(replica -> replica.channel.shutdown());
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CLOSE_AWAIT_MS);
        for (Replica replica : replicas) {
            try {
                long left = until - System.nanoTime();
                if (!replica.channel.awaitTermination(Math.max(0, left), TimeUnit.NANOSECONDS)) {
                    replica.channel.shutdownNow();
                }
            } catch (InterruptedException e) {
                replicas.forEach(r -> r.channel.shutdownNow());
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    @SuppressWarnings("deprecation") // nameResolverFactory: the simplest way to give one channel a fixed list
    private static ManagedChannel buildChannel(PdpConfig config, PdpConfig.Endpoint endpoint,
                                               ScheduledExecutorService scheduler) {
        ChannelCredentials credentials = credentials(config);
        try {
            return NettyChannelBuilder.forTarget(StaticResolverFactory.target(), credentials)
                .nameResolverFactory(new StaticResolverFactory(List.of(endpoint), scheduler))
                // Failover between replicas is withFailover's; gRPC's own retry would go to the same replica.
                .disableRetry()
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
