/**
 * Micrometer metrics of TLS closures: {@link io.github.gracefultls.micrometer.TlsCloseMetrics}.
 *
 * <p>{@code micrometer.core} is the name {@code micrometer-core} declares in its manifest
 * ({@code Automatic-Module-Name}); it has no module descriptor. Its types are part of this module's API
 * ({@code MeterBinder}, {@code MeterRegistry}), hence {@code requires transitive}, and that name is stable, hence the
 * warning about automatic modules is suppressed.
 */
@SuppressWarnings("requires-transitive-automatic")
module io.github.gracefultls.micrometer {
    requires transitive io.github.gracefultls;
    requires transitive micrometer.core;

    exports io.github.gracefultls.micrometer;
}
