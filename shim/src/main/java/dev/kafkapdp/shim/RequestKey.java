package dev.kafkapdp.shim;

import java.net.InetAddress;
import java.util.Objects;

import org.apache.kafka.common.security.auth.SecurityProtocol;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;

/**
 * The part of a cache key that is the same for every action of one Kafka request: everything in the request's
 * context that a policy can read. Built once per {@code authorize} call, with its hash computed up front.
 *
 * <p>The api version, correlation id and broker id are left out on purpose: the PDP carries them to the audit
 * trail only, and no policy can read them.
 */
final class RequestKey {
    private final String principalType;
    private final String principalName;
    private final InetAddress clientAddress;
    private final String listener;
    private final SecurityProtocol securityProtocol;
    private final String clientId;
    private final int requestType;
    private final int hash;

    RequestKey(String principalType, String principalName, InetAddress clientAddress, String listener,
               SecurityProtocol securityProtocol, String clientId, int requestType) {
        this.principalType = principalType;
        this.principalName = principalName;
        this.clientAddress = clientAddress;
        this.listener = listener;
        this.securityProtocol = securityProtocol;
        this.clientId = clientId;
        this.requestType = requestType;
        int h = Objects.hashCode(principalType);
        h = 31 * h + Objects.hashCode(principalName);
        h = 31 * h + Objects.hashCode(clientAddress);
        h = 31 * h + Objects.hashCode(listener);
        h = 31 * h + (securityProtocol == null ? 0 : securityProtocol.id);
        h = 31 * h + Objects.hashCode(clientId);
        this.hash = 31 * h + requestType;
    }

    static RequestKey of(AuthorizableRequestContext ctx) {
        return new RequestKey(ctx.principal().getPrincipalType(), ctx.principal().getName(), ctx.clientAddress(),
            ctx.listenerName(), ctx.securityProtocol(), ctx.clientId(), ctx.requestType());
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof RequestKey)) {
            return false;
        }
        RequestKey other = (RequestKey) o;
        return hash == other.hash
            && requestType == other.requestType
            && securityProtocol == other.securityProtocol
            && Objects.equals(principalName, other.principalName)
            && Objects.equals(principalType, other.principalType)
            && Objects.equals(clientAddress, other.clientAddress)
            && Objects.equals(listener, other.listener)
            && Objects.equals(clientId, other.clientId);
    }

    @Override
    public String toString() {
        return principalType + ":" + principalName + "@" + clientAddress + " listener=" + listener + " protocol="
            + securityProtocol + " clientId=" + clientId + " api=" + requestType;
    }
}
