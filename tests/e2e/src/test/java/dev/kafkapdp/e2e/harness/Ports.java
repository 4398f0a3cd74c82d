package dev.kafkapdp.e2e.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;

/** Free loopback ports for the broker's listeners. */
public final class Ports {

    private Ports() {
    }

    /**
     * Asks the kernel for a free loopback port and releases it again.
     *
     * <p>Known shortcoming: another process may take the port between this call and the broker binding it. The
     * broker's listeners and its quorum address must be known before it starts (the controller voter address is
     * written into the storage format), so port 0 is not an option there; the window is a few hundred
     * milliseconds and only bites on a machine busy opening ports. The PDP, in contrast, binds port 0.
     */
    public static int free() {
        try (ServerSocket socket = new ServerSocket()) {
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot find a free loopback port", e);
        }
    }
}
