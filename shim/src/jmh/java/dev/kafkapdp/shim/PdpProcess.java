package dev.kafkapdp.shim;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** The real PDP binary, started on a free loopback port for a benchmark and stopped after it. */
final class PdpProcess implements AutoCloseable {

    private final Process process;
    private final String address;
    private final Path log;

    private PdpProcess(Process process, String address, Path log) {
        this.process = process;
        this.address = address;
        this.log = log;
    }

    /** Starts {@code binary serve} on the policy directory and waits for its {@code listening on} line. */
    static PdpProcess start(Path binary, Path policyDir, long timeoutSeconds) throws Exception {
        if (!Files.isExecutable(binary)) {
            throw new IllegalStateException("no PDP binary at `" + binary + "`; pass -Dpdp.binary=PATH");
        }
        Path log = Files.createTempFile("kafka-pdp-bench", ".log");
        Process process = new ProcessBuilder(binary.toString(), "serve", "--plaintext", "--listen", "127.0.0.1:0",
            "--policy-dir", policyDir.toString())
            .redirectError(log.toFile())
            .start();
        BufferedReader stdout =
            new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String> firstLine = CompletableFuture.supplyAsync(() -> {
            try {
                return stdout.readLine();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        String line;
        try {
            line = firstLine.get(timeoutSeconds, TimeUnit.SECONDS);
        } catch (Exception e) {
            process.destroyForcibly();
            throw new IllegalStateException("the PDP did not report its address; its log: " + log, e);
        }
        if (line == null || !line.startsWith("listening on ")) {
            process.destroyForcibly();
            throw new IllegalStateException("unexpected first line from the PDP: `" + line + "`; its log: " + log);
        }
        return new PdpProcess(process, line.substring("listening on ".length()).trim(), log);
    }

    String address() {
        return address;
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
        try {
            Files.deleteIfExists(log); // kept only when the PDP fails to start, to say why
        } catch (IOException e) {
            // a leftover temporary file is harmless
        }
    }
}
