package io.github.gracefultls.micrometer;

import io.github.gracefultls.GracefulTlsCloseHandler;
import io.github.gracefultls.MessageState;
import io.github.gracefultls.TlsCloseEvent;
import io.github.gracefultls.TlsCloseInitiator;
import io.github.gracefultls.TlsCloseStatus;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;

import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Counts the TLS closures of {@link GracefulTlsCloseHandler} in Micrometer, by outcome, and times the closures this
 * side began. A {@link MeterBinder}: {@link #bindTo(MeterRegistry)} registers every meter, each at zero, and from
 * then on each {@link TlsCloseEvent} given to {@link #record(TlsCloseEvent)}, or passing through {@link #handler()},
 * counts in that registry.
 *
 * <h2>Meters</h2>
 *
 * <table class="striped">
 * <caption>Meters, their tags, and what they count</caption>
 * <thead>
 * <tr><th>name</th><th>type</th><th>tags</th><th>counts</th></tr>
 * </thead>
 * <tbody>
 * <tr><td>{@value #CLOSURES}</td><td>counter</td><td>{@value #STATUS_TAG}, {@value #INITIATOR_TAG},
 * {@value #MESSAGE_TAG}</td><td>every {@code TlsCloseEvent}</td></tr>
 * <tr><td>{@value #DURATION}</td><td>timer</td><td>{@value #STATUS_TAG}</td><td>{@link TlsCloseEvent#elapsed()} of
 * every closure with initiator {@link TlsCloseInitiator#LOCAL LOCAL}</td></tr>
 * </tbody>
 * </table>
 *
 * <p>Tag values are the names of the handler's enums: {@value #STATUS_TAG} is a {@link TlsCloseStatus}
 * ({@code CLOSE_NOTIFY_RECEIVED}, {@code TIMED_OUT}, {@code TRUNCATED}, {@code FAILED}), {@value #INITIATOR_TAG} a
 * {@link TlsCloseInitiator} ({@code LOCAL}, {@code PEER}) and {@value #MESSAGE_TAG} a {@link MessageState}
 * ({@code UNMARKED}, {@code BETWEEN_MESSAGES}, {@code IN_MESSAGE}). All 24 series of the counter and the 4 of the
 * timer exist from {@code bindTo} on, so a rate or an alert has a series to read before the first closure of its
 * kind. The names follow Micrometer's conventions; a registry renders them in its own, for example Prometheus as
 * {@code tls_close_total} and {@code tls_close_duration_seconds}. {@link Builder#prefix(String)} puts a prefix
 * before both names, {@link Builder#tags(Iterable)} adds tags to every series.
 *
 * <p>A message was cut ({@link TlsCloseEvent#isMessageCut()}) exactly when {@value #MESSAGE_TAG} is
 * {@code IN_MESSAGE} and {@value #STATUS_TAG} is not {@code CLOSE_NOTIFY_RECEIVED}: a clean end inside a message is
 * the peer's own doing and cut nothing. Those series are the ones to alert on, in PromQL
 * {@code tls_close_total{message="IN_MESSAGE",status!="CLOSE_NOTIFY_RECEIVED"}}. {@code TRUNCATED} with
 * {@code BETWEEN_MESSAGES} is a peer that dropped TCP after its last message (many browsers and HTTP clients do) and
 * lost nothing that had begun; with {@code UNMARKED} nothing marked messages on that channel
 * ({@link GracefulTlsCloseHandler#messageStarted()}, the HTTP module's {@code HttpTlsTruncationHandler}).
 *
 * <p>The timer leaves out closures the peer began: their {@code elapsed()} is {@code ZERO}, and would pull every
 * percentile down. Histograms and percentiles of the timer are the registry's to configure, with a
 * {@code MeterFilter} on {@value #DURATION}.
 *
 * <h2>Plain Netty</h2>
 *
 * <p>One {@code TlsCloseMetrics} for the application; its {@link #handler()} is {@code @Sharable}, one instance for
 * every pipeline, right after the {@code GracefulTlsCloseHandler}:
 *
 * <pre>
 * TlsCloseMetrics metrics = new TlsCloseMetrics();
 * metrics.bindTo(registry);
 *
 * protected void initChannel(SocketChannel ch) {
 *     ch.pipeline().addLast("ssl", sslContext.newHandler(ch.alloc()));
 *     ch.pipeline().addLast("tls-close", new GracefulTlsCloseHandler());
 *     ch.pipeline().addLast("tls-close-metrics", metrics.handler());
 *     ch.pipeline().addLast("app", appHandler);
 * }
 * </pre>
 *
 * <p>Where no handler can follow it, {@code record} takes the outcome from the handler's future:
 * {@code handler.closeFuture().addListener(f -> { if (f.isSuccess()) metrics.record((TlsCloseEvent) f.getNow()); })}.
 * In Spring Boot, a {@code TlsCloseMetrics} bean is bound to the application's registry by Boot itself.
 *
 * <h2>Threading</h2>
 *
 * <p>Every method may be called from any thread; {@code record} and the handler count from every event loop at once.
 * A registry counts the closures recorded after it was bound, not those before.
 */
public final class TlsCloseMetrics implements MeterBinder {

    /** The counter of closures, without a {@linkplain Builder#prefix(String) prefix}. */
    public static final String CLOSURES = "tls.close";
    /** The timer of closures this side began, without a {@linkplain Builder#prefix(String) prefix}. */
    public static final String DURATION = "tls.close.duration";
    /** The tag of the {@link TlsCloseStatus}, on both meters. */
    public static final String STATUS_TAG = "status";
    /** The tag of the {@link TlsCloseInitiator}, on the counter. */
    public static final String INITIATOR_TAG = "initiator";
    /** The tag of the {@link MessageState}, on the counter. */
    public static final String MESSAGE_TAG = "message";

    private static final Set<String> OWN_TAGS = Set.of(STATUS_TAG, INITIATOR_TAG, MESSAGE_TAG);
    private static final TlsCloseStatus[] STATUSES = TlsCloseStatus.values();
    private static final TlsCloseInitiator[] INITIATORS = TlsCloseInitiator.values();
    private static final MessageState[] MESSAGE_STATES = MessageState.values();

    private final String closuresName;
    private final String durationName;
    private final Tags tags;
    /** The meters of each registry bound so far. Bound rarely, read on every closure. */
    private final List<Meters> bound = new CopyOnWriteArrayList<>();
    private final ChannelHandler handler = new Recorder();

    /** Creates the metrics with the names {@value #CLOSURES} and {@value #DURATION} and no further tags. */
    public TlsCloseMetrics() {
        this(new Builder());
    }

    private TlsCloseMetrics(Builder builder) {
        this.closuresName = builder.prefix == null ? CLOSURES : builder.prefix + '.' + CLOSURES;
        this.durationName = builder.prefix == null ? DURATION : builder.prefix + '.' + DURATION;
        this.tags = builder.tags;
    }

    /**
     * Returns a builder for a name prefix and common tags.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Registers the counter and the timer in {@code registry}, every series at zero. Closures recorded from now on
     * count in it, and in every registry bound before. Binding the same registry again changes nothing.
     *
     * @param registry the registry to count in
     */
    @Override
    public void bindTo(MeterRegistry registry) {
        Objects.requireNonNull(registry, "registry");
        synchronized (bound) {
            for (Meters meters : bound) {
                if (meters.registry == registry) {
                    return;
                }
            }
            bound.add(new Meters(registry));
        }
    }

    /**
     * Counts one closure in every registry bound so far: the counter series of its status, initiator and message
     * state, and, when this side began it, its {@link TlsCloseEvent#elapsed()} in the timer of its status.
     *
     * <p>Takes each outcome once: give it the events of the handler's {@code closeFuture()}, or put
     * {@link #handler()} in the pipeline, not both.
     *
     * @param event the outcome of one channel's TLS closure
     */
    public void record(TlsCloseEvent event) {
        Objects.requireNonNull(event, "event");
        int series = series(event.status(), event.initiator(), event.messageState());
        boolean timed = event.initiator() == TlsCloseInitiator.LOCAL;
        for (Meters meters : bound) {
            meters.closures[series].increment();
            if (timed) {
                meters.durations[event.status().ordinal()].record(event.elapsed());
            }
        }
    }

    /**
     * Returns the handler that records each {@link TlsCloseEvent} passing through it and passes every event on.
     * It is {@code @Sharable}: add this one instance to every pipeline, after the {@code GracefulTlsCloseHandler}.
     *
     * @return the handler, the same instance on every call
     */
    public ChannelHandler handler() {
        return handler;
    }

    /**
     * Returns the name of the counter: {@value #CLOSURES}, after the prefix if there is one.
     *
     * @return the counter's name
     */
    public String closuresName() {
        return closuresName;
    }

    /**
     * Returns the name of the timer: {@value #DURATION}, after the prefix if there is one.
     *
     * @return the timer's name
     */
    public String durationName() {
        return durationName;
    }

    private static int series(TlsCloseStatus status, TlsCloseInitiator initiator, MessageState messageState) {
        return (status.ordinal() * INITIATORS.length + initiator.ordinal()) * MESSAGE_STATES.length
                + messageState.ordinal();
    }

    /** The meters of one registry, indexed by {@link #series} and by status. */
    private final class Meters {
        final MeterRegistry registry;
        final Counter[] closures = new Counter[STATUSES.length * INITIATORS.length * MESSAGE_STATES.length];
        final Timer[] durations = new Timer[STATUSES.length];

        Meters(MeterRegistry registry) {
            this.registry = registry;
            for (TlsCloseStatus status : STATUSES) {
                for (TlsCloseInitiator initiator : INITIATORS) {
                    for (MessageState messageState : MESSAGE_STATES) {
                        closures[series(status, initiator, messageState)] = Counter.builder(closuresName)
                                .description("TLS closures by outcome, initiator and message state (graceful-tls-close)")
                                .tags(tags)
                                .tag(STATUS_TAG, status.name())
                                .tag(INITIATOR_TAG, initiator.name())
                                .tag(MESSAGE_TAG, messageState.name())
                                .register(registry);
                    }
                }
                durations[status.ordinal()] = Timer.builder(durationName)
                        .description("Time from the start of a TLS closure this side began to its outcome "
                                + "(graceful-tls-close)")
                        .tags(tags)
                        .tag(STATUS_TAG, status.name())
                        .register(registry);
            }
        }
    }

    /** Records every {@link TlsCloseEvent} that passes, and passes every event on. */
    @ChannelHandler.Sharable
    private final class Recorder extends ChannelInboundHandlerAdapter {
        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            try {
                if (evt instanceof TlsCloseEvent) {
                    record((TlsCloseEvent) evt);
                }
            } finally {
                ctx.fireUserEventTriggered(evt);
            }
        }
    }

    /**
     * Configures a {@link TlsCloseMetrics}: a prefix for the meters' names and tags on every series.
     * Not thread-safe; the metrics it builds are.
     */
    public static final class Builder {
        private String prefix;
        private Tags tags = Tags.empty();

        private Builder() {
        }

        /**
         * Sets a prefix for both names: {@code prefix("edge")} gives {@code edge.tls.close} and
         * {@code edge.tls.close.duration}. By default there is none.
         *
         * @param prefix dot-separated lowercase words, for example {@code edge} or {@code gateway.upstream}
         * @return this builder
         * @throws IllegalArgumentException if {@code prefix} is empty or starts or ends with a dot
         */
        public Builder prefix(String prefix) {
            Objects.requireNonNull(prefix, "prefix");
            if (prefix.isEmpty() || prefix.startsWith(".") || prefix.endsWith(".")) {
                throw new IllegalArgumentException("prefix: \"" + prefix
                        + "\" (expected: not empty, no leading or trailing dot)");
            }
            this.prefix = prefix;
            return this;
        }

        /**
         * Adds tags to every series of both meters, for example the listener or the upstream the channels belong
         * to. A key given twice keeps its last value.
         *
         * @param tags the tags to add
         * @return this builder
         * @throws IllegalArgumentException if a key is {@value #STATUS_TAG}, {@value #INITIATOR_TAG} or
         *         {@value #MESSAGE_TAG}
         */
        public Builder tags(Iterable<Tag> tags) {
            Objects.requireNonNull(tags, "tags");
            for (Tag tag : tags) {
                Objects.requireNonNull(tag, "tag");
                if (OWN_TAGS.contains(tag.getKey())) {
                    throw new IllegalArgumentException("tag: " + tag.getKey()
                            + " (expected: a key other than " + STATUS_TAG + ", " + INITIATOR_TAG + " and "
                            + MESSAGE_TAG + ")");
                }
            }
            this.tags = this.tags.and(tags);
            return this;
        }

        /**
         * Adds one tag to every series of both meters.
         *
         * @param key the tag's key
         * @param value the tag's value
         * @return this builder
         * @throws IllegalArgumentException if {@code key} is {@value #STATUS_TAG}, {@value #INITIATOR_TAG} or
         *         {@value #MESSAGE_TAG}
         */
        public Builder tag(String key, String value) {
            Objects.requireNonNull(key, "key");
            Objects.requireNonNull(value, "value");
            return tags(Tags.of(key, value));
        }

        /**
         * Returns new metrics with this builder's prefix and tags. They count nowhere until bound to a registry.
         *
         * @return new metrics
         */
        public TlsCloseMetrics build() {
            return new TlsCloseMetrics(this);
        }
    }
}
