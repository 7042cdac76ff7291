package io.github.gracefultls;

/** The names of {@link Closure}'s phases and ends, which are bytes, for its {@code toString()} and the tests. */
final class ClosureNames {

    private static final String[] PHASES = {"IDLE", "FLUSHING", "FLUSHED", "CLOSED", "HANDED_BACK", "RELEASED"};
    private static final String[] ENDS = {"LEAVE_OPEN", "HAND_BACK", "CLOSE", "DISCONNECT"};

    private ClosureNames() {
    }

    /** The name of a phase, {@link Closure#IDLE} to {@link Closure#RELEASED}. */
    static String phase(byte phase) {
        return PHASES[phase];
    }

    /** The name of an end, {@link Closure#LEAVE_OPEN} to {@link Closure#DISCONNECT}. */
    static String end(byte end) {
        return ENDS[end];
    }
}
