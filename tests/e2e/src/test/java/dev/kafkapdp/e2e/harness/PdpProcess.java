package dev.kafkapdp.e2e.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The real {@code kafka-pdp serve} binary over plaintext gRPC on loopback, serving a policy directory.
 *
 * <p>The first start binds port 0 and learns the real port from the one line the binary prints on stdout,
 * {@code listening on <ip:port>}; every restart binds that same port again, so that the broker's shim, configured
 * with that endpoint, finds the PDP again on its own. stdout (after that line) and stderr are appended to
 * {@code target/e2e-logs/pdp/}.
 */
public final class PdpProcess implements AutoCloseable {

    private static final String LISTENING_PREFIX = "listening on ";
    private static final Duration STARTUP_DEADLINE = Duration.ofSeconds(60);

    private final Path binary;
    private final Path policyDir;
    private final Path logDir;
    private final List<String> extraArgs;
    private ChildProcess process;
    private String endpoint;

    private PdpProcess(Path binary, Path policyDir, Path logDir, List<String> extraArgs) {
        this.binary = binary;
        this.policyDir = policyDir;
        this.logDir = logDir;
        this.extraArgs = List.copyOf(extraArgs);
    }

    /** Starts the PDP on a port the kernel picks and waits for its {@code listening on} line. */
    public static PdpProcess start(Path binary, Path policyDir) {
        return start(binary, policyDir, "127.0.0.1:0", "pdp");
    }

    /**
     * Starts the PDP on {@code listen} (port 0 for any), logging to {@code target/e2e-logs/<logName>/}, and waits
     * for its {@code listening on} line.
     */
    public static PdpProcess start(Path binary, Path policyDir, String listen, String logName) {
        return start(binary, policyDir, listen, logName, List.of());
    }

    /** Like {@link #start(Path, Path, String, String)}, with {@code extraArgs} after the usual serve flags. */
    public static PdpProcess start(Path binary, Path policyDir, String listen, String logName,
            List<String> extraArgs) {
        try {
            Path logDir = Files.createDirectories(E2eEnvironment.logsDir().resolve(logName));
            // Restarts within a run append; a new run starts with empty logs.
            Files.deleteIfExists(logDir.resolve("stdout.log"));
            Files.deleteIfExists(logDir.resolve("stderr.log"));
            PdpProcess pdp = new PdpProcess(binary, policyDir, logDir, extraArgs);
            pdp.launch(listen);
            return pdp;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the PDP's log folder", e);
        }
    }

    /** The {@code host:port} the PDP serves on, the same across restarts. */
    public String endpoint() {
        return endpoint;
    }

    public boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** Kills the PDP at once (SIGKILL), as a crash would, and waits until it is gone. */
    public void kill() {
        if (process != null) {
            process.kill();
        }
    }

    /**
     * Stops the PDP as an orderly restart would: SIGTERM, then SIGKILL once {@code grace} has passed.
     *
     * @return whether it exited on its own within the grace period
     */
    public boolean stop(Duration grace) {
        return process == null || process.stop(grace);
    }

    /**
     * Suspends the PDP (SIGSTOP): its sockets stay open and connections are still accepted by the kernel, but
     * nothing is answered, as with a PDP stuck in a long pause. Undo with {@link #resume()}.
     */
    public void freeze() {
        signal("STOP");
    }

    /** Lets a {@link #freeze() frozen} PDP run again (SIGCONT). */
    public void resume() {
        signal("CONT");
    }

    private void signal(String name) {
        List<String> command = List.of("kill", "-" + name, Long.toString(process.process().pid()));
        ChildProcess.Result result = ChildProcess.run("kill-" + name, command, logDir, Duration.ofSeconds(10));
        if (result.exitCode() != 0) {
            throw new IllegalStateException("kill -" + name + " failed: " + result.output());
        }
    }

    /** Starts the PDP again on the port it had, after {@link #kill()}. */
    public void restart() {
        if (isAlive()) {
            throw new IllegalStateException("the PDP is still running as " + process);
        }
        launch(endpoint);
    }

    /** The last lines of the PDP's output, for a failure message. */
    public String logTail(int lines) {
        return ChildProcess.tail(logDir.resolve("stderr.log"), lines)
                + ChildProcess.tail(logDir.resolve("stdout.log"), lines / 4);
    }

    @Override
    public void close() {
        if (process != null) {
            process.stop(Duration.ofSeconds(5));
        }
    }

    private void launch(String listen) {
        List<String> command = new java.util.ArrayList<>(List.of(binary.toString(), "serve", "--plaintext",
                "--listen", listen, "--policy-dir", policyDir.toString()));
        command.addAll(extraArgs);
        Path stderr = logDir.resolve("stderr.log");
        appendMarker(stderr, "=== kafka-pdp " + String.join(" ", command.subList(1, command.size())));
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(policyDir.toFile())
                .redirectError(ProcessBuilder.Redirect.appendTo(stderr.toFile()));
        builder.environment().putIfAbsent("RUST_LOG", "info");
        Process started;
        try {
            started = builder.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + binary, e);
        }
        process = ChildProcess.adopt("kafka-pdp", started, List.of(stderr, logDir.resolve("stdout.log")));
        endpoint = awaitListening(started, listen);
    }

    /**
     * Reads stdout until the {@code listening on} line, then keeps copying the rest to {@code stdout.log} so that
     * the PDP never blocks on a full pipe.
     */
    private String awaitListening(Process started, String listen) {
        CompletableFuture<String> address = new CompletableFuture<>();
        Thread reader = new Thread(() -> copyStdout(started, address), "pdp-stdout");
        reader.setDaemon(true);
        reader.start();
        try {
            String bound = address.get(STARTUP_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
            if (!listen.endsWith(":0") && !bound.equals(listen)) {
                throw new AssertionError("the PDP was asked to listen on " + listen + " but says " + bound);
            }
            return bound;
        } catch (TimeoutException e) {
            process.kill();
            throw new AssertionError("the PDP printed no `listening on` line within "
                    + STARTUP_DEADLINE.toSeconds() + " s\n" + logTail(60), e);
        } catch (ExecutionException e) {
            process.kill();
            throw new AssertionError("the PDP did not start: " + e.getCause().getMessage() + "\n" + logTail(60), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while starting the PDP", e);
        }
    }

    private void copyStdout(Process started, CompletableFuture<String> address) {
        Path stdout = logDir.resolve("stdout.log");
        try (BufferedReader lines = new BufferedReader(
                new InputStreamReader(started.getInputStream(), StandardCharsets.UTF_8));
                Writer out = Files.newBufferedWriter(stdout, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND)) {
            String line;
            while ((line = lines.readLine()) != null) {
                if (!address.isDone() && line.startsWith(LISTENING_PREFIX)) {
                    address.complete(line.substring(LISTENING_PREFIX.length()).trim());
                }
                out.write(line);
                out.write('\n');
                out.flush();
            }
            address.completeExceptionally(new IllegalStateException("it exited with code "
                    + started.waitFor() + " before printing `listening on`"));
        } catch (IOException e) {
            address.completeExceptionally(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            address.completeExceptionally(e);
        }
    }

    private static void appendMarker(Path file, String marker) {
        try {
            Files.writeString(file, marker + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write `" + file + "`", e);
        }
    }
}
