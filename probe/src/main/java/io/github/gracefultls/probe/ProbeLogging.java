package io.github.gracefultls.probe;

import java.io.PrintStream;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Routes the log of Netty and of the library (java.util.logging, as there is no SLF4J in the jar): errors only by
 * default, so that the probe's own output stays readable; with {@code --verbose} the library's debug log too, one
 * line per record on stderr.
 */
final class ProbeLogging {

    /** Held strongly: java.util.logging keeps only weak references to configured loggers. */
    private static final Logger NETTY = Logger.getLogger("io.netty");
    private static final Logger LIBRARY = Logger.getLogger("io.github.gracefultls");

    private ProbeLogging() {
    }

    static synchronized void configure(boolean verbose, PrintStream err) {
        for (Logger logger : new Logger[] {NETTY, LIBRARY}) {
            for (Handler h : logger.getHandlers()) {
                logger.removeHandler(h);
            }
        }
        if (!verbose) {
            NETTY.setLevel(Level.SEVERE);
            LIBRARY.setLevel(Level.SEVERE);
            NETTY.setUseParentHandlers(true);
            LIBRARY.setUseParentHandlers(true);
            return;
        }
        Handler handler = new Handler() {
            private final Formatter formatter = new OneLine();

            @Override
            public void publish(LogRecord record) {
                if (isLoggable(record)) {
                    err.print(formatter.format(record));
                }
            }

            @Override
            public void flush() {
                err.flush();
            }

            @Override
            public void close() {
            }
        };
        handler.setLevel(Level.ALL);
        NETTY.setLevel(Level.INFO);
        LIBRARY.setLevel(Level.FINE);
        for (Logger logger : new Logger[] {NETTY, LIBRARY}) {
            logger.addHandler(handler);
            logger.setUseParentHandlers(false);
        }
    }

    private static final class OneLine extends Formatter {
        @Override
        public String format(LogRecord r) {
            String name = r.getLoggerName() == null ? "" : r.getLoggerName();
            StringBuilder b = new StringBuilder("[").append(r.getLevel()).append("] ")
                    .append(name.substring(name.lastIndexOf('.') + 1)).append(": ").append(formatMessage(r));
            if (r.getThrown() != null) {
                b.append(": ").append(r.getThrown());
            }
            return b.append(System.lineSeparator()).toString();
        }
    }
}
