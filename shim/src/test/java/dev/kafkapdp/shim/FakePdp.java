package dev.kafkapdp.shim;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

import dev.kafkapdp.proto.v1.Action;
import dev.kafkapdp.proto.v1.ActionResult;
import dev.kafkapdp.proto.v1.AuthorizeByResourceTypeRequest;
import dev.kafkapdp.proto.v1.AuthorizeByResourceTypeResponse;
import dev.kafkapdp.proto.v1.AuthorizeRequest;
import dev.kafkapdp.proto.v1.AuthorizeResponse;
import dev.kafkapdp.proto.v1.AuthorizerGrpc;
import dev.kafkapdp.proto.v1.Decision;
import dev.kafkapdp.proto.v1.PolicyVersion;
import dev.kafkapdp.proto.v1.WatchPolicyVersionRequest;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.grpc.stub.StreamObserver;

/**
 * A stand-in PDP on a real loopback socket (port 0), for unit tests of the shim's client logic: batching,
 * deadlines, failover and the version stream. The real PDP is exercised by the end-to-end suite and the benchmark.
 */
final class FakePdp extends AuthorizerGrpc.AuthorizerImplBase implements AutoCloseable {

    final List<AuthorizeRequest> requests = new CopyOnWriteArrayList<>();
    final List<AuthorizeByResourceTypeRequest> byTypeRequests = new CopyOnWriteArrayList<>();
    private final List<StreamObserver<PolicyVersion>> watchers = new CopyOnWriteArrayList<>();
    private final Server server;
    volatile String version = "v1";
    volatile long delayMs;
    volatile Status failWith;
    /** Decides each action; by default topics named `allowed-*` are allowed, everything else denied. */
    volatile Function<Action, ActionResult> decide = action -> result(
        action.getResourceName().startsWith("allowed-") ? Decision.DECISION_ALLOW : Decision.DECISION_DENY, true);
    /** When set, rewrites the whole response (to send malformed answers). */
    volatile Function<AuthorizeResponse, AuthorizeResponse> tamper = Function.identity();

    FakePdp() throws IOException {
        this(0);
    }

    FakePdp(int port) throws IOException {
        this(port, null);
    }

    /** A PDP that serves TLS with the given context (which may require client certificates). */
    FakePdp(int port, SslContext tls) throws IOException {
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", port));
        if (tls != null) {
            builder.sslContext(tls);
        }
        server = builder.addService(this).build().start();
    }

    static ActionResult result(Decision decision, boolean cacheable) {
        return ActionResult.newBuilder().setDecision(decision).setCacheable(cacheable).build();
    }

    int port() {
        return server.getPort();
    }

    String endpoint() {
        return "127.0.0.1:" + port();
    }

    /** Activates a new version and tells every open stream, as the PDP does on reload. */
    void publish(String newVersion) {
        version = newVersion;
        for (StreamObserver<PolicyVersion> watcher : watchers) {
            watcher.onNext(PolicyVersion.newBuilder().setVersion(newVersion).setActivatedAtUnixMs(42).build());
        }
    }

    /** Ends every open version stream with an error, as a PDP restart would. */
    void breakStreams() {
        for (StreamObserver<PolicyVersion> watcher : watchers) {
            watchers.remove(watcher);
            watcher.onError(Status.UNAVAILABLE.withDescription("test broke the stream").asRuntimeException());
        }
    }

    int openStreams() {
        return watchers.size();
    }

    @Override
    public void authorize(AuthorizeRequest request, StreamObserver<AuthorizeResponse> responses) {
        requests.add(request);
        pause();
        if (failWith != null) {
            responses.onError(failWith.asRuntimeException());
            return;
        }
        AuthorizeResponse.Builder response = AuthorizeResponse.newBuilder().setPolicyVersion(version);
        for (Action action : request.getActionsList()) {
            response.addResults(decide.apply(action));
        }
        responses.onNext(tamper.apply(response.build()));
        responses.onCompleted();
    }

    @Override
    public void authorizeByResourceType(AuthorizeByResourceTypeRequest request,
                                        StreamObserver<AuthorizeByResourceTypeResponse> responses) {
        byTypeRequests.add(request);
        pause();
        boolean allowed = request.getContext().getPrincipal().getName().equals("producer");
        responses.onNext(AuthorizeByResourceTypeResponse.newBuilder()
            .setPolicyVersion(version)
            .setDecision(allowed ? Decision.DECISION_ALLOW : Decision.DECISION_DENY)
            .build());
        responses.onCompleted();
    }

    @Override
    public void watchPolicyVersion(WatchPolicyVersionRequest request, StreamObserver<PolicyVersion> responses) {
        watchers.add(responses);
        responses.onNext(PolicyVersion.newBuilder().setVersion(version).setActivatedAtUnixMs(42).build());
    }

    private void pause() {
        long delay = delayMs;
        if (delay > 0) {
            try {
                Thread.sleep(delay); // simulates a slow PDP; the test itself never sleeps to wait
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        server.shutdownNow();
        server.awaitTermination();
    }
}
