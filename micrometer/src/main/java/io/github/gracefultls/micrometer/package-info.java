/**
 * Micrometer metrics of the {@link io.github.gracefultls.TlsCloseEvent}s of {@link
 * io.github.gracefultls.GracefulTlsCloseHandler}: {@link io.github.gracefultls.micrometer.TlsCloseMetrics}.
 */
package io.github.gracefultls.micrometer;
