package io.github.gracefultls.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Picks TCP ports for peer processes (gnutls-serv, openssl, nginx, Python) that bind a port they are given.
 *
 * <p>A port taken from the kernel with {@code new ServerSocket(0)} lies in the ephemeral range, where any outgoing
 * connection made before the peer binds it can take it ("Address already in use"). These ports lie below Linux's
 * ephemeral range (32768 and up) and are checked free on every address, since some peers (gnutls-serv) bind the
 * wildcard address.
 */
public final class FreePorts {

    private static final int FIRST = 20000;
    private static final int COUNT = 12000;

    private FreePorts() {
    }

    /**
     * Returns a port that no socket uses on any address right now.
     */
    public static int freePort() {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        for (int attempt = 0; attempt < 500; attempt++) {
            int port = FIRST + random.nextInt(COUNT);
            try (ServerSocket socket = new ServerSocket()) {
                socket.setReuseAddress(false);
                socket.bind(new InetSocketAddress(port), 1);
                return port;
            } catch (IOException inUse) {
                // try another
            }
        }
        throw new UncheckedIOException(new IOException("no free TCP port in " + FIRST + "-" + (FIRST + COUNT - 1)));
    }
}
