package io.github.gracefultls.interop;

import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * Starts the interop report when the JUnit launcher session opens and, when it closes, ends it and prints its summary.
 * Registered in {@code META-INF/services/org.junit.platform.launcher.LauncherSessionListener}.
 */
public final class InteropReportListener implements LauncherSessionListener {

    @Override
    public void launcherSessionOpened(LauncherSession session) {
        InteropReport.begin();
    }

    @Override
    public void launcherSessionClosed(LauncherSession session) {
        String summary = InteropReport.finish();
        if (!summary.isEmpty()) {
            System.out.println();
            System.out.print(summary);
            System.out.flush();
        }
    }
}
