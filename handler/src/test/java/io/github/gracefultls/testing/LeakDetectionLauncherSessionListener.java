package io.github.gracefultls.testing;

import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

import java.util.List;

/**
 * Installs the recording leak detector factory when the JUnit launcher session opens, i.e. before any
 * test class (and hence any Netty buffer class) is initialized. Registered in
 * {@code META-INF/services/org.junit.platform.launcher.LauncherSessionListener}.
 */
public final class LeakDetectionLauncherSessionListener implements LauncherSessionListener {

    @Override
    public void launcherSessionOpened(LauncherSession session) {
        LeakDetectionExtension.install();
    }

    @Override
    public void launcherSessionClosed(LauncherSession session) {
        // Leaks found after the last test can no longer fail a test: report them loudly instead.
        List<String> leaks = LeakDetectionExtension.collectLeaks();
        if (!leaks.isEmpty()) {
            System.err.println("ERROR: " + leaks.size() + " Netty resource leak(s) detected after the last test:");
            leaks.forEach(System.err::println);
            LeakDetectionExtension.clearLeaks();
        }
    }
}
