package dev.kafkapdp.e2e.harness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A process the suite started, with its output in files, and the means to end it and everything it spawned.
 *
 * <p>Every child is also registered in a JVM shutdown hook, so that an aborted run leaves no broker or PDP
 * behind (a {@code kill -9} of the test JVM itself is the one case this cannot cover).
 */
public final class ChildProcess {

    private final String name;
    private final Process process;
    private final List<Path> logs;
    private final Thread shutdownHook;

    private ChildProcess(String name, Process process, List<Path> logs) {
        this.name = name;
        this.process = process;
        this.logs = logs;
        this.shutdownHook = new Thread(this::killTree, "kill-" + name);
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /** Starts {@code command} in {@code workDir}, appending its stdout and stderr to the given files. */
    public static ChildProcess start(String name, List<String> command, Path workDir, Path stdout, Path stderr) {
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(workDir.toFile())
                .redirectOutput(ProcessBuilder.Redirect.appendTo(stdout.toFile()))
                .redirectError(ProcessBuilder.Redirect.appendTo(stderr.toFile()));
        builder.environment().remove("KAFKA_OPTS");
        try {
            return new ChildProcess(name, builder.start(), List.of(stdout, stderr));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name + ": " + String.join(" ", command), e);
        }
    }

    /** Wraps an already started process whose output the caller reads itself. */
    public static ChildProcess adopt(String name, Process process, List<Path> logs) {
        return new ChildProcess(name, process, logs);
    }

    /** Runs {@code command} to completion within {@code timeout}, returning its exit code and combined output. */
    public static Result run(String name, List<String> command, Path workDir, Duration timeout) {
        Path output = workDir.resolve(name + ".out");
        ProcessBuilder builder = new ProcessBuilder(command)
                .directory(workDir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(output.toFile());
        try {
            Process process = builder.start();
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly().waitFor();
                throw new AssertionError(name + " did not finish within " + timeout.toSeconds() + " s; output:\n"
                        + Files.readString(output, StandardCharsets.UTF_8));
            }
            return new Result(process.exitValue(), Files.readString(output, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + name, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + name, e);
        }
    }

    /** Exit code and combined stdout and stderr of a finished command. */
    public record Result(int exitCode, String output) {
    }

    public Process process() {
        return process;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /**
     * Asks politely (SIGTERM), then forcibly after {@code grace}; ends the children as well.
     *
     * @return whether the process exited on its own within the grace period
     */
    public boolean stop(Duration grace) {
        List<ProcessHandle> children = process.descendants().toList();
        process.destroy();
        boolean exited = false;
        try {
            exited = process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS);
            if (!exited) {
                killTree();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            killTree();
        }
        children.forEach(ProcessHandle::destroyForcibly);
        forgetShutdownHook();
        return exited;
    }

    /** Ends the process and its children at once (SIGKILL) and waits until it is gone. */
    public void kill() {
        killTree();
        forgetShutdownHook();
    }

    private void killTree() {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        try {
            process.waitFor(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void forgetShutdownHook() {
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException alreadyShuttingDown) {
            // The hook runs anyway; nothing to forget.
        }
    }

    /** The last {@code lines} lines of each of this process's log files, headed by the file name. */
    public String tail(int lines) {
        StringBuilder out = new StringBuilder();
        for (Path log : logs) {
            out.append(tail(log, lines));
        }
        return out.toString();
    }

    /** The last {@code lines} lines of one file, headed by its name; empty if it is missing or empty. */
    public static String tail(Path file, int lines) {
        if (!Files.exists(file)) {
            return "";
        }
        try {
            if (Files.size(file) == 0) {
                return "";
            }
        } catch (IOException e) {
            return "----- cannot read " + file + ": " + e + "\n";
        }
        try {
            // Decoded leniently: a log cut mid-character must not hide the rest of it.
            List<String> all = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).lines().toList();
            List<String> last = new ArrayList<>(all.subList(Math.max(0, all.size() - lines), all.size()));
            return "----- last " + last.size() + " lines of " + file + " -----\n" + String.join("\n", last) + "\n";
        } catch (IOException e) {
            return "----- cannot read " + file + ": " + e + "\n";
        }
    }

    @Override
    public String toString() {
        return name + " (pid " + process.pid() + ")";
    }
}
