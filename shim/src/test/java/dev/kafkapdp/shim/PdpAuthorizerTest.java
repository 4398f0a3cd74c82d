package dev.kafkapdp.shim;

import static dev.kafkapdp.shim.TestContexts.await;
import static dev.kafkapdp.shim.TestContexts.ctx;
import static dev.kafkapdp.shim.TestContexts.topic;
import static dev.kafkapdp.shim.TestContexts.topics;
import static org.apache.kafka.server.authorizer.AuthorizationResult.ALLOWED;
import static org.apache.kafka.server.authorizer.AuthorizationResult.DENIED;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.common.Endpoint;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.apache.kafka.server.authorizer.AclCreateResult;
import org.apache.kafka.server.authorizer.AclDeleteResult;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizationResult;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import dev.kafkapdp.proto.v1.AuthorizeResponse;
import dev.kafkapdp.proto.v1.Decision;
import dev.kafkapdp.proto.v1.Operation;
import io.grpc.Status;

/**
 * The shim's client logic against a stand-in PDP on a real loopback socket: batching, caching, deadlines,
 * failover, the version stream, start futures and the read-only ACL view.
 */
class PdpAuthorizerTest {

    private static final Duration WAIT = Duration.ofSeconds(10);

    private final PdpAuthorizer authorizer = new PdpAuthorizer();

    @AfterEach
    void closeAuthorizer() {
        authorizer.close();
    }

    private void configure(String endpoints, Map<String, Object> extra) {
        Map<String, Object> configs = new HashMap<>(extra);
        configs.put(PdpConfig.ENDPOINTS_CONFIG, endpoints);
        configs.putIfAbsent(PdpConfig.DEADLINE_MS_CONFIG, "2000");
        authorizer.configure(configs);
    }

    private void configureAndWait(FakePdp pdp, Map<String, Object> extra) {
        configure(pdp.endpoint(), extra);
        awaitVersion(pdp.version);
    }

    private void awaitVersion(String version) {
        await("policy version " + version, WAIT, () -> authorizer.decider().policy().version().equals(version));
    }

    private ShimMetrics metrics() {
        return authorizer.decider().metrics();
    }

    private static int closedPort() throws Exception {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    @Test
    void missesOfOneCallGoInOneBatchAndHitsStayLocal() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of());
            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
            assertEquals(1, pdp.requests.size());

            List<AuthorizationResult> results = authorizer.authorize(ctx("alice"),
                topics(AclOperation.READ, "allowed-a", "allowed-b", "secret"));

            assertEquals(List.of(ALLOWED, ALLOWED, DENIED), results);
            assertEquals(2, pdp.requests.size(), "the two misses travel in one request");
            assertEquals(2, pdp.requests.get(1).getActionsCount());
            assertEquals("allowed-b", pdp.requests.get(1).getActions(0).getResourceName());

            authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a", "allowed-b", "secret"));
            assertEquals(2, pdp.requests.size(), "every action was cached");
            assertEquals(4, metrics().cacheHits());
            assertEquals(3, metrics().cacheMisses.sum());
            assertEquals(5, metrics().allowed());
            assertEquals(2, metrics().denied());

            // One-action requests answered from the cache take the fast path: same answers, same counters.
            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-b")));
            assertEquals(List.of(DENIED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "secret")));
            assertEquals(2, pdp.requests.size());
            assertEquals(6, metrics().cacheHits());
            assertEquals(6, metrics().allowed());
            assertEquals(3, metrics().denied());
            // Another client id is another key: policies can read it.
            TestContexts.Ctx other = new TestContexts.Ctx(ctx("alice").principal(), ctx("alice").clientAddress(),
                "CLIENT", SecurityProtocol.SASL_PLAINTEXT, "other-client", ctx("alice").requestType(), 9, 8);
            authorizer.authorize(other, topics(AclOperation.READ, "allowed-b"));
            assertEquals(3, pdp.requests.size());
        }
    }

    @Test
    void requestCarriesTheWholeContext() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of(PdpConfig.NODE_ID_CONFIG, "5"));
            authorizer.authorize(ctx("alice"), List.of(new Action(AclOperation.WRITE,
                new org.apache.kafka.common.resource.ResourcePattern(ResourceType.TOPIC, "allowed-x",
                    PatternType.LITERAL), 1, false, true)));

            var request = pdp.requests.get(0);
            assertEquals("User", request.getContext().getPrincipal().getType());
            assertEquals("alice", request.getContext().getPrincipal().getName());
            assertEquals("127.0.0.1", request.getContext().getClientAddress());
            assertEquals("CLIENT", request.getContext().getListener());
            assertEquals(SecurityProtocol.SASL_PLAINTEXT.name, request.getContext().getSecurityProtocol());
            assertEquals("test-client", request.getContext().getClientId());
            assertEquals("PRODUCE", request.getContext().getRequestApi());
            assertEquals(9, request.getContext().getRequestApiVersion());
            assertEquals(7, request.getContext().getCorrelationId());
            assertEquals(5, request.getContext().getBrokerId());
            assertEquals(Operation.OPERATION_WRITE, request.getActions(0).getOperation());
            assertFalse(request.getActions(0).getLogIfAllowed());
            assertTrue(request.getActions(0).getLogIfDenied());
        }
    }

    @Test
    void uncacheableDecisionsAreAskedEveryTime() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            pdp.decide = action -> FakePdp.result(Decision.DECISION_ALLOW, false);
            configureAndWait(pdp, Map.of());

            authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "t"));
            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "t")));
            assertEquals(2, pdp.requests.size());
        }
    }

    @Test
    void slowPdpIsDeniedAtTheDeadline() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of(PdpConfig.DEADLINE_MS_CONFIG, "50"));
            pdp.delayMs = 1_000;

            List<AuthorizationResult> results =
                authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a", "allowed-b"));

            assertEquals(List.of(DENIED, DENIED), results);
            assertEquals(2, metrics().failClosedCount(ShimMetrics.FailReason.DEADLINE_EXCEEDED));
            assertEquals(0, authorizer.decider().cache().size(), "a failure is never cached");
        }
    }

    @Test
    void unreachablePdpIsDeniedAndCounted() throws Exception {
        configure("127.0.0.1:" + closedPort(), Map.of(PdpConfig.DEADLINE_MS_CONFIG, "200"));

        assertEquals(List.of(DENIED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
        long failed = metrics().failClosedCount(ShimMetrics.FailReason.UNAVAILABLE)
            + metrics().failClosedCount(ShimMetrics.FailReason.DEADLINE_EXCEEDED);
        assertEquals(1, failed);
        assertEquals(AuthorizationResult.DENIED,
            authorizer.authorizeByResourceType(ctx("producer"), AclOperation.WRITE, ResourceType.TOPIC));
    }

    @Test
    void errorStatusAndMalformedAnswersAreDenied() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of());

            pdp.failWith = Status.INVALID_ARGUMENT.withDescription("bad enum");
            assertEquals(List.of(DENIED), authorizer.authorize(ctx("a"), topics(AclOperation.READ, "allowed-a")));
            assertEquals(1, metrics().failClosedCount(ShimMetrics.FailReason.RPC_ERROR));

            pdp.failWith = null;
            pdp.tamper = response -> response.toBuilder().clearResults().build();
            assertEquals(List.of(DENIED), authorizer.authorize(ctx("a"), topics(AclOperation.READ, "allowed-a")));
            assertEquals(1, metrics().failClosedCount(ShimMetrics.FailReason.BAD_RESPONSE));

            pdp.tamper = response -> AuthorizeResponse.newBuilder(response).clearResults()
                .addResults(FakePdp.result(Decision.DECISION_UNSPECIFIED, true)).build();
            assertEquals(List.of(DENIED), authorizer.authorize(ctx("a"), topics(AclOperation.READ, "allowed-a")));
            assertEquals(1, metrics().failClosedCount(ShimMetrics.FailReason.UNKNOWN_DECISION));
            assertEquals(0, authorizer.decider().cache().size());
        }
    }

    @Test
    void matchAnythingOperationsAreDeniedWithoutAsking() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of());

            assertEquals(List.of(DENIED, ALLOWED), authorizer.authorize(ctx("alice"),
                List.of(topic(AclOperation.ALL, "allowed-a"), topic(AclOperation.READ, "allowed-a"))));
            assertEquals(1, pdp.requests.get(0).getActionsCount());
            assertEquals(1, metrics().failClosedCount(ShimMetrics.FailReason.UNSUPPORTED_ACTION));
        }
    }

    @Test
    void superUsersAreAnsweredLocally() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of(PdpConfig.SUPER_USERS_CONFIG, "User:admin"));

            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("admin"), topics(AclOperation.ALTER, "secret")));
            assertEquals(ALLOWED,
                authorizer.authorizeByResourceType(ctx("admin"), AclOperation.WRITE, ResourceType.TOPIC));
            assertTrue(pdp.requests.isEmpty());
            assertTrue(pdp.byTypeRequests.isEmpty());
        }
    }

    @Test
    void newPolicyVersionDropsTheCache() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of());
            authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a"));
            assertEquals(1, authorizer.decider().cache().size());

            pdp.decide = action -> FakePdp.result(Decision.DECISION_DENY, true);
            pdp.publish("v2");
            awaitVersion("v2");

            assertEquals(List.of(DENIED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
            assertEquals(2, pdp.requests.size());
            assertEquals(2, metrics().policyVersionChanges.sum(), "v1 at start, then v2");
        }
    }

    @Test
    void lostStreamDropsTheCacheAndIsReopened() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of());
            authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a"));
            assertEquals(1, authorizer.decider().cache().size());

            pdp.breakStreams();

            await("stream reopened", WAIT, () -> pdp.openStreams() == 1 && authorizer.decider().policy().known());
            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
            assertEquals(2, pdp.requests.size(), "the decision cached before the loss was dropped");
        }
    }

    @Test
    void failsOverToTheReplicaThatIsUp() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configure("127.0.0.1:" + closedPort() + "," + pdp.endpoint(), Map.of());
            awaitVersion("v1");

            for (int i = 0; i < 5; i++) {
                assertEquals(List.of(ALLOWED),
                    authorizer.authorize(ctx("user" + i), topics(AclOperation.READ, "allowed-a")));
            }
            assertEquals(5, pdp.requests.size());
        }
    }

    @Test
    void callsInFlightOnAKilledReplicaAreRetriedOnTheOtherWithoutDenials() throws Exception {
        try (FakePdp first = new FakePdp(); KillableProxy firstProcess = new KillableProxy(first.port());
             FakePdp second = new FakePdp()) {
            first.delayMs = 20; // keeps calls in flight on the replica when it is killed
            second.delayMs = 20;
            configure(firstProcess.endpoint() + "," + second.endpoint(), Map.of());
            awaitVersion("v1");
            AtomicInteger warmUps = new AtomicInteger();
            await("both replicas connected", WAIT, () -> {
                authorizer.authorize(ctx("warm-up-" + warmUps.incrementAndGet()), topics(AclOperation.READ, "a"));
                return !first.requests.isEmpty() && !second.requests.isEmpty();
            });

            int threads = 4;
            int perThread = 40;
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            CountDownLatch halfway = new CountDownLatch(threads * 10);
            List<Future<Integer>> denials = new ArrayList<>();
            try {
                for (int t = 0; t < threads; t++) {
                    int thread = t;
                    denials.add(pool.submit(() -> {
                        int denied = 0;
                        for (int i = 0; i < perThread; i++) {
                            // A new principal every time: a cache miss, so every call goes to a replica.
                            List<AuthorizationResult> result = authorizer.authorize(ctx("user-" + thread + "-" + i),
                                topics(AclOperation.READ, "allowed-a"));
                            if (!result.equals(List.of(ALLOWED))) {
                                denied++;
                            }
                            halfway.countDown();
                        }
                        return denied;
                    }));
                }
                assertTrue(halfway.await(WAIT.toMillis(), TimeUnit.MILLISECONDS));
                int beforeKill = second.requests.size();
                firstProcess.kill(); // resets its connections, with calls in flight
                int denied = 0;
                for (Future<Integer> f : denials) {
                    denied += f.get();
                }
                assertEquals(0, denied, () -> "the surviving replica answers every call; fail-closed counts: "
                    + failClosedCounts());
                assertEquals(0, metrics().failClosedCount(ShimMetrics.FailReason.UNAVAILABLE));
                assertTrue(second.requests.size() > beforeKill, "the survivor served the calls after the kill");
            } finally {
                pool.shutdownNow();
            }

            second.close();
            assertEquals(List.of(DENIED), authorizer.authorize(ctx("late"), topics(AclOperation.READ, "allowed-a")),
                "with every replica gone the call is denied");
            assertEquals(1, metrics().failClosedCount(ShimMetrics.FailReason.UNAVAILABLE)
                + metrics().failClosedCount(ShimMetrics.FailReason.DEADLINE_EXCEEDED));
        }
    }

    @Test
    void aReplicaBackFromAnOutageTakesOverAtOnceWhenTheOtherDies() throws Exception {
        int laterPort = closedPort();
        try (FakePdp first = new FakePdp(); KillableProxy firstProcess = new KillableProxy(first.port())) {
            configure(firstProcess.endpoint() + ",127.0.0.1:" + laterPort, Map.of(PdpConfig.DEADLINE_MS_CONFIG, "500"));
            awaitVersion("v1");
            // Calls that reach the absent replica fail to connect, which puts its channel into gRPC's backoff.
            for (int i = 0; i < 4; i++) {
                assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("early-" + i), topics(AclOperation.READ,
                    "allowed-a")));
            }
            try (FakePdp later = new FakePdp(laterPort)) {
                firstProcess.kill();
                for (int i = 0; i < 4; i++) {
                    assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("late-" + i), topics(AclOperation.READ,
                        "allowed-a")), () -> "denied with one replica up; fail-closed counts: " + failClosedCounts());
                }
                assertEquals(4, later.requests.size());
            }
        }
    }

    private Map<ShimMetrics.FailReason, Long> failClosedCounts() {
        Map<ShimMetrics.FailReason, Long> counts = new java.util.EnumMap<>(ShimMetrics.FailReason.class);
        for (ShimMetrics.FailReason reason : ShimMetrics.FailReason.values()) {
            counts.put(reason, metrics().failClosedCount(reason));
        }
        return counts;
    }

    @Test
    void hostNamesAreLookedUpAndAnUnknownOneIsSkipped() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configure("no-such-pdp.invalid:50051,localhost:" + pdp.port(), Map.of());
            awaitVersion("v1");

            assertEquals(List.of(ALLOWED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
        }
    }

    @Test
    void accessReturnsWhenThePdpComesBack() throws Exception {
        int port;
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of(PdpConfig.DEADLINE_MS_CONFIG, "200"));
            port = pdp.port();
        }
        assertEquals(List.of(DENIED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));

        try (FakePdp restarted = new FakePdp(port)) {
            await("access back", WAIT, () -> authorizer.authorize(ctx("alice"),
                topics(AclOperation.READ, "allowed-a")).equals(List.of(ALLOWED)));
            await("stream back", WAIT, () -> authorizer.decider().policy().known());
        }
    }

    @Test
    void authorizeByResourceTypeAsksThePdp() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of());

            assertEquals(ALLOWED,
                authorizer.authorizeByResourceType(ctx("producer"), AclOperation.IDEMPOTENT_WRITE, ResourceType.CLUSTER));
            assertEquals(DENIED,
                authorizer.authorizeByResourceType(ctx("other"), AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID));
            assertEquals(2, pdp.byTypeRequests.size());
            assertEquals(dev.kafkapdp.proto.v1.ResourceType.RESOURCE_TYPE_TRANSACTIONAL_ID,
                pdp.byTypeRequests.get(1).getResourceType());
        }
    }

    @Test
    void earlyListenersStartWithoutThePdpAndClientListenersTimeOut() throws Exception {
        configure("127.0.0.1:" + closedPort(), Map.of(PdpConfig.START_TIMEOUT_MS_CONFIG, "300"));
        Endpoint controller = new Endpoint("CONTROLLER", SecurityProtocol.PLAINTEXT, "localhost", 9093);
        Endpoint internal = new Endpoint("INTERNAL", SecurityProtocol.PLAINTEXT, "localhost", 9094);
        Endpoint client = new Endpoint("CLIENT", SecurityProtocol.SASL_SSL, "localhost", 9092);

        Map<Endpoint, ? extends CompletionStage<Void>> futures = authorizer.start(new TestContexts.ServerInfo(
            List.of(controller, internal, client), internal, List.of("CONTROLLER")));

        assertTrue(futures.get(controller).toCompletableFuture().isDone());
        assertTrue(futures.get(internal).toCompletableFuture().isDone());
        CompletableFuture<Void> clientReady = futures.get(client).toCompletableFuture();
        ExecutionException e = assertThrows(ExecutionException.class, clientReady::get);
        assertInstanceOf(org.apache.kafka.common.errors.TimeoutException.class, e.getCause());
        assertTrue(e.getCause().getMessage().contains(PdpConfig.START_TIMEOUT_MS_CONFIG));
    }

    @Test
    void clientListenersStartOnceTheVersionIsKnown() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configure(pdp.endpoint(), Map.of());
            Endpoint client = new Endpoint("CLIENT", SecurityProtocol.SASL_SSL, "localhost", 9092);
            Map<Endpoint, ? extends CompletionStage<Void>> futures =
                authorizer.start(new TestContexts.ServerInfo(List.of(client), null, List.of()));

            futures.get(client).toCompletableFuture().get();
            assertTrue(authorizer.decider().policy().known());
        }
    }

    @Test
    void aclsAreReadOnlyAndSayWhereThePoliciesLive() throws Exception {
        configure("127.0.0.1:" + closedPort(), Map.of());

        List<AclBinding> all = new ArrayList<>();
        authorizer.acls(AclBindingFilter.ANY).forEach(all::add);
        assertEquals(1, all.size());
        assertTrue(all.get(0).pattern().name().contains("Cedar policies"), all.get(0).toString());
        AclBindingFilter someTopic = new AclBindingFilter(
            new ResourcePatternFilter(ResourceType.TOPIC, "payments", PatternType.LITERAL), AccessControlEntryFilter.ANY);
        assertFalse(authorizer.acls(someTopic).iterator().hasNext());

        List<? extends CompletionStage<AclCreateResult>> created =
            authorizer.createAcls(ctx("admin"), List.of(all.get(0), all.get(0)));
        assertEquals(2, created.size());
        for (CompletionStage<AclCreateResult> result : created) {
            var error = result.toCompletableFuture().get().exception().orElseThrow();
            assertInstanceOf(InvalidRequestException.class, error);
            assertTrue(error.getMessage().contains("Cedar policies in version control"));
        }
        AclDeleteResult deleted = authorizer.deleteAcls(ctx("admin"), List.of(AclBindingFilter.ANY)).get(0)
            .toCompletableFuture().get();
        assertTrue(deleted.exception().orElseThrow().getMessage().contains("Cedar policies"));
    }

    @Test
    void closedAuthorizerDenies() throws Exception {
        try (FakePdp pdp = new FakePdp()) {
            configureAndWait(pdp, Map.of());
            authorizer.close();
            assertEquals(List.of(DENIED), authorizer.authorize(ctx("alice"), topics(AclOperation.READ, "allowed-a")));
        }
    }
}
