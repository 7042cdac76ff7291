/**
 * Benchmarks of {@link io.github.gracefultls.GracefulTlsCloseHandler}, each against a baseline measured in the same
 * run: JMH microbenchmarks and harnesses over real sockets. See {@code docs/BENCHMARKS.md} for the figures and the
 * command of each.
 */
package io.github.gracefultls.benchmarks;
