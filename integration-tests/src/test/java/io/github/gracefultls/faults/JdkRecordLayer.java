package io.github.gracefultls.faults;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.util.Deque;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * Records that no public API sends, produced by the JDK's own TLS record layer ({@code sun.security.ssl}, opened to
 * the tests by {@code --add-opens java.base/sun.security.ssl=ALL-UNNAMED}): a warning alert after the handshake (the
 * JDK sends {@code user_canceled} only from {@code SSLSocket.close()} on TLS 1.3), an empty application-data record
 * (no engine sends one for an empty write), and a KeyUpdate after a close_notify (no engine writes after its
 * close_notify). They are encrypted with the engine's keys and sequence numbers, so its later records stay valid:
 * real records of a real TLS stack, only queued by hand. Works on a JDK {@link SSLEngine} ({@code SslProvider.JDK})
 * of Java 17 to 25.
 */
final class JdkRecordLayer {

    /** RFC 8446 §6.1 / RFC 5246 §7.2: the alert level "warning", {@code close_notify} and {@code user_canceled}. */
    static final byte WARNING = 1;
    static final byte CLOSE_NOTIFY = 0;
    static final byte USER_CANCELED = 90;
    /** RFC 8446 §4.6.3: the handshake type of KeyUpdate. */
    private static final byte KEY_UPDATE = 24;
    private static final byte APPLICATION_DATA = 23;

    private JdkRecordLayer() {
    }

    /** Queues a warning alert with {@code description}; it goes out with the engine's next wrap. */
    static void queueWarningAlert(SSLEngine engine, byte description) {
        try {
            Object outputRecord = outputRecord(engine);
            Method encodeAlert = method(outputRecord.getClass(), "encodeAlert", byte.class, byte.class);
            encodeAlert.invoke(outputRecord, WARNING, description);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot reach the JDK's TLS record layer", e);
        }
    }

    /**
     * Queues a TLS 1.3 KeyUpdate message with update_requested; it goes out with the engine's next wrap, encrypted
     * with the engine's current keys. Only the message: the engine does not change its own keys (it sends nothing
     * after it in the cases that use this).
     */
    static void queueKeyUpdateRequest(SSLEngine engine) {
        try {
            Object outputRecord = outputRecord(engine);
            byte[] message = {KEY_UPDATE, 0, 0, 1, 1}; // type, 3-byte length, request_update = update_requested
            method(outputRecord.getClass(), "encodeHandshake", byte[].class, int.class, int.class)
                    .invoke(outputRecord, message, 0, message.length);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot reach the JDK's TLS record layer", e);
        }
    }

    /** Queues an empty application-data record; it goes out with the engine's next wrap. */
    static void queueEmptyApplicationData(SSLEngine engine) {
        try {
            // Queue a record the way an alert is queued (same cipher, same versions), then make it empty data.
            Object outputRecord = outputRecord(engine);
            method(outputRecord.getClass(), "encodeAlert", byte.class, byte.class)
                    .invoke(outputRecord, WARNING, USER_CANCELED);
            Object fragmenter = field(outputRecord.getClass(), "fragmenter").get(outputRecord);
            Deque<?> memos = (Deque<?>) field(fragmenter.getClass(), "handshakeMemos").get(fragmenter);
            Object memo = memos.peekLast();
            field(memo.getClass(), "contentType").setByte(memo, APPLICATION_DATA);
            field(memo.getClass(), "fragment").set(memo, new byte[0]);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot reach the JDK's TLS record layer", e);
        }
    }

    /**
     * The cipher the engine decrypts with now. TLS 1.3: another object once the engine has read a KeyUpdate, which
     * tells whether the other side sent one.
     */
    static Object readCipher(SSLEngine engine) {
        try {
            Object context = field(engine.getClass(), "conContext").get(engine);
            Object inputRecord = field(context.getClass(), "inputRecord").get(context);
            return field(inputRecord.getClass(), "readCipher").get(inputRecord);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot reach the JDK's TLS record layer", e);
        }
    }

    /** Wraps what the engine has queued: the bytes of its records. */
    static byte[] drain(SSLEngine engine) throws SSLException {
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize() * 64);
        ByteBuffer empty = ByteBuffer.allocate(0);
        for (int i = 0; i < 1000; i++) {
            SSLEngineResult r = engine.wrap(empty, out);
            if (r.bytesProduced() == 0) {
                break;
            }
        }
        out.flip();
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        return bytes;
    }

    private static Object outputRecord(SSLEngine engine) throws ReflectiveOperationException {
        if (!engine.getClass().getName().equals("sun.security.ssl.SSLEngineImpl")) {
            throw new IllegalArgumentException("not the JDK's SSLEngine: " + engine.getClass().getName());
        }
        Object context = field(engine.getClass(), "conContext").get(engine);
        return field(context.getClass(), "outputRecord").get(context);
    }

    private static Field field(Class<?> type, String name) throws NoSuchFieldException {
        for (Class<?> c = type; c != null; c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField(name);
                f.setAccessible(true);
                return f;
            } catch (NoSuchFieldException e) {
                // look in the superclass
            }
        }
        throw new NoSuchFieldException(type.getName() + "." + name);
    }

    private static Method method(Class<?> type, String name, Class<?>... parameters) throws NoSuchMethodException {
        for (Class<?> c = type; c != null; c = c.getSuperclass()) {
            try {
                Method m = c.getDeclaredMethod(name, parameters);
                m.setAccessible(true);
                return m;
            } catch (NoSuchMethodException e) {
                // look in the superclass
            }
        }
        throw new NoSuchMethodException(type.getName() + "." + name);
    }
}
