package io.github.gracefultls.benchmarks;

import io.netty.handler.ssl.SslProvider;
import picocli.CommandLine;
import picocli.CommandLine.Option;

import java.util.List;
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

    /** {@code --protocol}. */
    static class Protocol {
        @Option(names = "--protocol", paramLabel = "TLSv1.2|TLSv1.3", defaultValue = "TLSv1.3",
                converter = ProtocolConverter.class, description = "TLS protocol. Default: ${DEFAULT-VALUE}.")
        String protocol;
    }

    /** {@code --provider} (one, OpenSSL by default) and {@code --protocol}: a harness that measures one setup. */
    static final class OneTls extends Protocol {
        @Option(names = "--provider", paramLabel = "JDK|OPENSSL", defaultValue = "OPENSSL",
                converter = ProviderConverter.class, description = "TLS provider. Default: ${DEFAULT-VALUE}.")
        SslProvider provider;
    }

    /** {@code --provider} (a list, both by default) and {@code --protocol}: a harness that measures each engine. */
    static final class EachTls extends Protocol {
        @Option(names = "--provider", paramLabel = "JDK|OPENSSL", split = ",", defaultValue = "JDK,OPENSSL",
                converter = ProviderConverter.class, description = "TLS providers, in order. Default: ${DEFAULT-VALUE}.")
        List<SslProvider> providers;
    }
}
