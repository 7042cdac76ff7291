package io.github.gracefultls.proxy;

import io.github.gracefultls.testing.TestCertificates;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * nginx in the foreground ({@code daemon off; master_process off;}) with a configuration written to a temporary
 * directory: a plain HTTP file server, or a TLS stream proxy ({@code proxy_half_close on}) in front of an upstream.
 */
final class Nginx implements AutoCloseable {

    /** Debian's dynamic stream module (package libnginx-mod-stream); nginx 1.22 has proxy_half_close (1.21.4+). */
    private static final Path STREAM_MODULE = Path.of("/usr/lib/nginx/modules/ngx_stream_module.so");
    private static final Duration LISTEN = Duration.ofSeconds(10);

    private final Proc process;
    private final int port;

    private Nginx(Proc process, int port) {
        this.process = process;
        this.port = port;
    }

    int port() {
        return port;
    }

    /** Serves the files of {@code www} over plain HTTP. */
    static Nginx fileServer(Path directory, Path www) throws IOException {
        return start(directory, port -> "http {\n"
                + "  access_log off;\n"
                + "  default_type application/octet-stream;\n"
                + "  client_body_temp_path " + directory.resolve("tmp-body") + ";\n"
                + "  proxy_temp_path " + directory.resolve("tmp-proxy") + ";\n"
                + "  fastcgi_temp_path " + directory.resolve("tmp-fastcgi") + ";\n"
                + "  uwsgi_temp_path " + directory.resolve("tmp-uwsgi") + ";\n"
                + "  scgi_temp_path " + directory.resolve("tmp-scgi") + ";\n"
                + "  server { listen 127.0.0.1:" + port + "; root " + www + "; }\n"
                + "}\n", "");
    }

    /** A TLS-terminating stream proxy to 127.0.0.1:{@code upstreamPort}, in plain TCP or TLS. */
    static Nginx streamProxy(Path directory, TestCertificates.PemFiles pem, int upstreamPort, boolean upstreamTls)
            throws IOException {
        Proc.require("nginx", "nginx");
        String loadModule = "";
        if (!staticStreamModule()) {
            Proc.requireFile(Optional.of(STREAM_MODULE), "nginx stream module " + STREAM_MODULE,
                    "libnginx-mod-stream");
            loadModule = "load_module " + STREAM_MODULE + ";\n";
        }
        return start(directory, port -> "stream {\n"
                + "  server {\n"
                + "    listen 127.0.0.1:" + port + " ssl;\n"
                + "    ssl_certificate " + pem.certificate() + ";\n"
                + "    ssl_certificate_key " + pem.privateKey() + ";\n"
                + "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                + "    proxy_pass 127.0.0.1:" + upstreamPort + ";\n"
                + "    proxy_half_close on;\n"
                + (upstreamTls ? "    proxy_ssl on;\n    proxy_ssl_verify off;\n" : "")
                + "  }\n"
                + "}\n", loadModule);
    }

    private static boolean staticStreamModule() {
        try {
            Proc p = Proc.start("nginx-V", List.of(Proc.require("nginx", "nginx").toString(), "-V"), Path.of("."));
            p.awaitExit(Duration.ofSeconds(10));
            String configure = p.stderr();
            return configure.contains("--with-stream ") || configure.endsWith("--with-stream\n");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private interface Block {
        String forPort(int port);
    }

    private static Nginx start(Path directory, Block block, String mainContext) throws IOException {
        Path nginx = Proc.require("nginx", "nginx");
        Files.createDirectories(directory);
        AssertionError last = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            int port = Proc.freePort();
            Path conf = directory.resolve("nginx.conf");
            Files.writeString(conf, mainContext
                    + "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                    + "error_log " + directory.resolve("error.log") + " info;\n"
                    + "pid " + directory.resolve("nginx.pid") + ";\n"
                    + "events { worker_connections 1024; }\n"
                    + block.forPort(port));
            Proc process = Proc.start("nginx", List.of(nginx.toString(), "-p", directory.toString(), "-c",
                    conf.toString(), "-e", directory.resolve("error.log").toString()), directory);
            try {
                process.awaitListening(port, LISTEN);
                return new Nginx(process, port);
            } catch (AssertionError e) {
                last = e; // the port was taken meanwhile: try another
                closeQuietly(process);
            }
        }
        throw last;
    }

    private static void closeQuietly(Proc process) {
        try {
            process.close();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.close();
    }
}
