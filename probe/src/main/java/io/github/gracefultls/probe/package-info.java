/**
 * {@code tls-close-probe}: an embedded demo of {@code GracefulTlsCloseHandler}, and a probe that tells how a TLS
 * server closes its connections.
 */
package io.github.gracefultls.probe;
