package io.github.gracefultls.testing;

import io.netty.util.internal.logging.InternalLoggerFactory;
import io.netty.util.internal.logging.JdkLoggerFactory;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * Captures what a class logs through Netty's {@link InternalLoggerFactory}, without a logging dependency: with none on
 * the class path Netty logs to {@code java.util.logging}, under the class's name. A class's Netty logger is created
 * once, when the class loads, so swapping Netty's default factory in a test would come too late; the capture hooks
 * the {@code java.util.logging} logger instead. {@link #close()} restores the logger.
 */
public final class LogCapture implements AutoCloseable {

    private final Logger logger;
    private final Level previousLevel;
    private final boolean previousUseParentHandlers;
    private final List<LogRecord> records = new CopyOnWriteArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            records.add(record);
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    private LogCapture(Class<?> type, Level level) {
        if (!(InternalLoggerFactory.getDefaultFactory() instanceof JdkLoggerFactory)) {
            throw new IllegalStateException("Netty logs through " + InternalLoggerFactory.getDefaultFactory()
                    + ", not java.util.logging: LogCapture cannot see it");
        }
        logger = Logger.getLogger(type.getName());
        previousLevel = logger.getLevel();
        previousUseParentHandlers = logger.getUseParentHandlers();
        handler.setLevel(Level.ALL);
        logger.setLevel(level);
        logger.setUseParentHandlers(false); // captured, not printed
        logger.addHandler(handler);
    }

    /** Starts capturing what {@code type} logs at {@code level} and above (FINE: Netty's debug). */
    public static LogCapture of(Class<?> type, Level level) {
        return new LogCapture(type, level);
    }

    /** The formatted messages logged at exactly {@code level}, in order. */
    public List<String> messages(Level level) {
        return records.stream()
                .filter(r -> r.getLevel().equals(level))
                .map(LogRecord::getMessage)
                .collect(Collectors.toList());
    }

    @Override
    public void close() {
        logger.removeHandler(handler);
        logger.setLevel(previousLevel);
        logger.setUseParentHandlers(previousUseParentHandlers);
    }
}
