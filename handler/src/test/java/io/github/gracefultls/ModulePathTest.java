package io.github.gracefultls;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.spi.ToolProvider;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The library as the named module {@code io.github.gracefultls}: a consumer module that {@code requires} it is compiled
 * and run on the module path, with Netty's jars as modules (explicit modules on Netty 4.2, automatic ones on 4.1).
 * The other tests run on the class path.
 */
class ModulePathTest {

    private static final String MODULE = "io.github.gracefultls";
    /** The Netty jars the module needs, as they appear on the test class path. */
    private static final Pattern NETTY_JAR = Pattern.compile("netty-(common|buffer|resolver|transport"
            + "|transport-native-unix-common|codec|codec-base|handler)-\\d.*\\.jar");

    private static final String CONSUMER_MODULE_INFO = String.join("\n",
            "module gracefultls.consumer {",
            "    requires io.github.gracefultls;",
            "    requires io.netty.handler;",
            "    requires java.logging;",
            "}");

    private static final String CONSUMER_MAIN = String.join("\n",
            "package gracefultls.consumer;",
            "",
            "import io.github.gracefultls.GracefulTlsCloseHandler;",
            "import io.github.gracefultls.PeerClosePolicy;",
            "import io.github.gracefultls.TlsCloseEvent;",
            "import io.github.gracefultls.TlsCloseMode;",
            "import io.netty.channel.embedded.EmbeddedChannel;",
            "import io.netty.handler.ssl.SslContextBuilder;",
            "import io.netty.handler.ssl.SslProvider;",
            "import io.netty.util.concurrent.EventExecutor;",
            "import io.netty.util.concurrent.Future;",
            "import io.netty.util.internal.logging.InternalLoggerFactory;",
            "import io.netty.util.internal.logging.JdkLoggerFactory;",
            "",
            "import java.lang.reflect.InaccessibleObjectException;",
            "import java.time.Duration;",
            "import java.util.List;",
            "import java.util.concurrent.CopyOnWriteArrayList;",
            "import java.util.logging.Handler;",
            "import java.util.logging.Level;",
            "import java.util.logging.LogRecord;",
            "import java.util.logging.Logger;",
            "",
            "public final class Main {",
            "    private static final Logger LIBRARY = Logger.getLogger(\"io.github.gracefultls\");",
            "    private static final List<String> DEBUG = new CopyOnWriteArrayList<>();",
            "",
            "    public static void main(String[] args) throws Exception {",
            "        InternalLoggerFactory.setDefaultFactory(JdkLoggerFactory.INSTANCE);",
            "        LIBRARY.setLevel(Level.FINE);",
            "        LIBRARY.setUseParentHandlers(false);",
            "        LIBRARY.addHandler(new Handler() {",
            "            @Override public void publish(LogRecord r) { DEBUG.add(r.getMessage()); }",
            "            @Override public void flush() { }",
            "            @Override public void close() { }",
            "        });",
            "",
            "        EmbeddedChannel ch = new EmbeddedChannel();",
            "        ch.pipeline().addLast(\"ssl\", SslContextBuilder.forClient().sslProvider(SslProvider.JDK).build()",
            "                .newHandler(ch.alloc()));",
            "        GracefulTlsCloseHandler handler = GracefulTlsCloseHandler.builder()",
            "                .closeNotifyReadTimeout(Duration.ofSeconds(1))",
            "                .peerClosePolicy(PeerClosePolicy.CLOSE)",
            "                .build();",
            "        ch.pipeline().addLast(\"tls-close\", handler);",
            "        Future<TlsCloseEvent> bye = handler.bye(TlsCloseMode.SHUT_RDWR);",
            "        System.out.println(\"bye-before-handshake: \" + bye.cause().getClass().getSimpleName());",
            "        System.out.println(\"module: \" + GracefulTlsCloseHandler.class.getModule().getName());",
            "",
            "        Class<?> clocks = Class.forName(\"io.github.gracefultls.Clocks\");",
            "        try {",
            "            clocks.getDeclaredMethod(\"nanoTime\", EventExecutor.class).setAccessible(true);",
            "            System.out.println(\"helpers-accessible: true\");",
            "        } catch (InaccessibleObjectException e) {",
            "            System.out.println(\"helpers-accessible: false\");",
            "        }",
            "        System.out.println(\"executor-clock-readable: \" + DEBUG.stream()",
            "                .noneMatch(m -> m.contains(\"Cannot read the event loop's clock\")));",
            "        Class.forName(\"io.github.gracefultls.SslHandlerAccess\"); // looked up when first needed",
            "        System.out.println(\"undecoded-bytes-readable: \" + DEBUG.stream()",
            "                .noneMatch(m -> m.contains(\"Cannot read SslHandler's undecoded bytes\")));",
            "        ch.finishAndReleaseAll();",
            "    }",
            "}");

    @TempDir
    Path tmp;

    @Test
    void descriptorExportsOnlyThePublicPackage() throws Exception {
        ModuleDescriptor d = ModuleFinder.of(moduleDirectory()).find(MODULE).orElseThrow().descriptor();

        assertThat(d.isAutomatic()).isFalse();
        assertThat(d.isOpen()).isFalse();
        assertThat(d.packages()).containsExactly(MODULE);
        assertThat(d.exports()).singleElement().satisfies(e -> {
            assertThat(e.source()).isEqualTo(MODULE);
            assertThat(e.isQualified()).isFalse();
        });
        assertThat(d.opens()).isEmpty();
        assertThat(d.requires().stream().map(ModuleDescriptor.Requires::name))
                .contains("io.netty.common", "io.netty.buffer", "io.netty.transport", "io.netty.codec",
                        "io.netty.handler");
    }

    @Test
    void consumerModuleUsesThePublicApiOnTheModulePath() throws Exception {
        Path out = compileConsumer(CONSUMER_MAIN);

        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("--module-path");
        command.add(modulePath(out));
        command.add("-m");
        command.add("gracefultls.consumer/gracefultls.consumer.Main");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output;
        try (InputStream in = process.getInputStream()) {
            output = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();

        assertThat(process.exitValue()).as(output).isZero();
        assertThat(output)
                .contains("bye-before-handshake: IllegalStateException")
                .contains("module: " + MODULE)
                .contains("helpers-accessible: false")
                .contains("executor-clock-readable: true");
        // SslHandlerAccess reads ByteToMessageDecoder#actualReadableBytes reflectively. Netty 4.1's automatic modules
        // open their packages; Netty 4.2's explicit io.netty.codec does not, and the handler then does without it.
        boolean codecIsAutomatic = ModuleFinder.of(nettyJars().toArray(new Path[0])).find("io.netty.codec")
                .orElseThrow().descriptor().isAutomatic();
        assertThat(output).contains("undecoded-bytes-readable: " + codecIsAutomatic);
    }

    @Test
    void packagePrivateHelpersCannotBeCompiledAgainst() throws Exception {
        String main = String.join("\n",
                "package gracefultls.consumer;",
                "public final class Main {",
                "    public static void main(String[] args) {",
                "        io.github.gracefultls.Clocks.nanoTime(null);",
                "    }",
                "}");
        StringWriter diagnostics = new StringWriter();

        int exitCode = compile(main, tmp.resolve("failing"), diagnostics);

        assertThat(exitCode).isNotZero();
        assertThat(diagnostics.toString()).contains("Clocks is not public in io.github.gracefultls");
    }

    private Path compileConsumer(String main) throws IOException, URISyntaxException {
        StringWriter diagnostics = new StringWriter();
        Path out = tmp.resolve("consumer");
        int exitCode = compile(main, out, diagnostics);
        assertThat(exitCode).as(diagnostics::toString).isZero();
        return out;
    }

    /** Compiles the consumer module with javac (java.util.spi.ToolProvider: no javax.tools module to read). */
    private int compile(String main, Path out, StringWriter diagnostics) throws IOException, URISyntaxException {
        Path src = tmp.resolve("src-" + out.getFileName());
        Path pkg = Files.createDirectories(src.resolve("gracefultls/consumer"));
        Files.writeString(src.resolve("module-info.java"), CONSUMER_MODULE_INFO);
        Files.writeString(pkg.resolve("Main.java"), main);
        Files.createDirectories(out);

        ToolProvider javac = ToolProvider.findFirst("javac").orElseThrow();
        try (PrintWriter w = new PrintWriter(diagnostics)) {
            return javac.run(w, w, "-d", out.toString(), "--module-path", modulePath(null),
                    src.resolve("module-info.java").toString(), pkg.resolve("Main.java").toString());
        }
    }

    /** The consumer (if any), this module as compiled by Maven, and the Netty jars. */
    private static String modulePath(Path consumer) throws URISyntaxException {
        List<String> entries = new ArrayList<>();
        if (consumer != null) {
            entries.add(consumer.toString());
        }
        entries.add(moduleDirectory().toString());
        for (Path jar : nettyJars()) {
            entries.add(jar.toString());
        }
        return String.join(File.pathSeparator, entries);
    }

    /** The main classes directory (target/classes), an exploded module with its module-info.class. */
    private static Path moduleDirectory() throws URISyntaxException {
        Path dir = Path.of(GracefulTlsCloseHandler.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        assertThat(dir.resolve("module-info.class")).exists();
        return dir;
    }

    private static List<Path> nettyJars() {
        List<Path> jars = Arrays.stream(System.getProperty("java.class.path").split(Pattern.quote(File.pathSeparator)))
                .map(Path::of)
                .filter(p -> NETTY_JAR.matcher(p.getFileName().toString()).matches())
                .collect(Collectors.toList());
        assertThat(jars).as("Netty jars on the test class path").isNotEmpty();
        return jars;
    }
}
