package io.github.gracefultls.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.IntFunction;

/**
 * nginx as a test peer: in the foreground ({@code daemon off; master_process off;}), one worker process, with its
 * configuration, pid file, logs and temporary files in one directory, listening on loopback ports from
 * {@link FreePorts}, never port 80.
 */
public final class Nginx {

    private Nginx() {
    }

    /**
     * Writes {@code nginx.conf} in {@code directory} and starts nginx with it, waiting up to {@code bound} until it
     * listens. The configuration is {@code mainDirectives} (such as {@code load_module}, which must come first), the
     * main context of a foreground nginx, then {@code contextsForPort}: the {@code http} or {@code stream} contexts
     * for the port to listen on. Another port is tried if that one was taken meanwhile
     * ({@link PeerProcess#startListening}).
     */
    public static PeerProcess start(Path directory, String mainDirectives, IntFunction<String> contextsForPort,
                                    Duration bound) {
        String nginx = Peers.require(Peers.Program.NGINX).toString();
        Path conf = directory.resolve("nginx.conf");
        Path errorLog = directory.resolve("error.log");
        return PeerProcess.startListening("nginx", port -> {
            try {
                Files.createDirectories(directory);
                Files.writeString(conf, mainDirectives
                        + "daemon off;\n"
                        + "master_process off;\n"
                        + "worker_processes 1;\n"
                        + "pid " + directory.resolve("nginx.pid") + ";\n"
                        + "error_log " + errorLog + " info;\n"
                        + "events { worker_connections 1024; }\n"
                        + contextsForPort.apply(port));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + conf, e);
            }
            return List.of(nginx, "-p", directory.toString(), "-c", conf.toString(), "-e", errorLog.toString());
        }, directory, bound);
    }

    /** The temporary directories of an {@code http} context, in {@code directory}: nginx's defaults need root. */
    public static String httpTempPaths(Path directory) {
        return "  client_body_temp_path " + directory.resolve("client_body") + ";\n"
                + "  proxy_temp_path " + directory.resolve("proxy") + ";\n"
                + "  fastcgi_temp_path " + directory.resolve("fastcgi") + ";\n"
                + "  uwsgi_temp_path " + directory.resolve("uwsgi") + ";\n"
                + "  scgi_temp_path " + directory.resolve("scgi") + ";\n";
    }
}
