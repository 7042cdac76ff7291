package io.github.gracefultls.benchmarks;

import io.netty.handler.ssl.SslProvider;
import picocli.CommandLine;

import java.util.concurrent.Callable;

/** The harnesses' command lines, with picocli: running one, and the values they share. */
final class Cli {

    private Cli() {
    }

    /** Runs {@code command} with {@code args}; exits with picocli's code if it is not 0 (bad arguments, a failure). */
    static void run(Callable<Integer> command, String... args) {
        int code = new CommandLine(command).setCaseInsensitiveEnumValuesAllowed(true).execute(args);
        if (code != 0) {
            System.exit(code);
        }
    }

    /** {@code JDK} or {@code OPENSSL}, in any case. */
    static final class ProviderConverter implements CommandLine.ITypeConverter<SslProvider> {
        @Override
        public SslProvider convert(String value) {
            try {
                return TlsContexts.provider(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** {@code TLSv1.2}, {@code TLSv1.3}, {@code 1.2} or {@code 1.3}. */
    static final class ProtocolConverter implements CommandLine.ITypeConverter<String> {
        @Override
        public String convert(String value) {
            try {
                return TlsContexts.protocol(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** A size in bytes: {@code 32m}, {@code 1g}, {@code 64k}, {@code 1gib} or a number of bytes. */
    static final class BytesConverter implements CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            try {
                return Net.bytes(value);
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("'" + value + "' is not a size (expected e.g. 32m, 1g)");
            }
        }
    }
}
