package io.github.gracefultls.benchmarks;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.Stroke;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Draws close latency against RTT from measured {@link CloseLatency.Point}s as a PNG, with Java2D alone: for each
 * closer the median joined by a line and the p10..p90 spread as a bar; the physical limit (1 RTT) and the goal
 * (1 RTT + 2 ms) as dashed lines; the RTT the connections measured (a one-byte echo) as crosses.
 */
final class LatencyChart {

    private static final int WIDTH = 900;
    private static final int HEIGHT = 560;
    /** The lower panel: time over the nominal RTT, where the closers differ. */
    private static final int PANEL = 300;
    private static final int LEFT = 80;
    private static final int RIGHT = 40;
    private static final int TOP = 60;
    private static final int BOTTOM = 70;
    private static final Color GRACEFUL = new Color(0x1F77B4);
    private static final Color NETTY = new Color(0xFF7F0E);
    private static final Color LIMIT = new Color(0x555555);
    private static final Color GOAL = new Color(0x2CA02C);
    private static final Color ECHO = new Color(0x9467BD);

    private LatencyChart() {
    }

    static void write(Path file, String subtitle, List<CloseLatency.Point> points) throws IOException {
        System.setProperty("java.awt.headless", "true");
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT + PANEL, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT + PANEL);
            draw(g, subtitle, points);
            Graphics2D lower = (Graphics2D) g.create();
            lower.translate(0, HEIGHT);
            drawOverhead(lower, points);
            lower.dispose();
        } finally {
            g.dispose();
        }
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        if (!ImageIO.write(image, "png", file.toFile())) {
            throw new IOException("no PNG writer");
        }
    }

    private static void draw(Graphics2D g, String subtitle, List<CloseLatency.Point> points) {
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        double maxRtt = 1;
        double maxMs = 1;
        for (CloseLatency.Point p : points) {
            maxRtt = Math.max(maxRtt, p.rttMillis());
            maxMs = Math.max(maxMs, Math.max(Stats.of(p.graceful()).p90(), Stats.of(p.netty()).p90()));
            maxMs = Math.max(maxMs, p.rttMillis() + 2.0);
        }
        double xMax = niceCeiling(maxRtt);
        double yMax = niceCeiling(maxMs * 1.1);
        Axes axes = new Axes(xMax, yMax);

        // Grid and ticks.
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        FontMetrics fm = g.getFontMetrics();
        double xStep = step(xMax);
        double yStep = step(yMax);
        for (double x = 0; x <= xMax + 1e-9; x += xStep) {
            int px = axes.x(x);
            g.setColor(new Color(0xEEEEEE));
            g.drawLine(px, TOP, px, HEIGHT - BOTTOM);
            g.setColor(Color.DARK_GRAY);
            String s = label(x);
            g.drawString(s, px - fm.stringWidth(s) / 2, HEIGHT - BOTTOM + 18);
        }
        for (double y = 0; y <= yMax + 1e-9; y += yStep) {
            int py = axes.y(y);
            g.setColor(new Color(0xEEEEEE));
            g.drawLine(LEFT, py, WIDTH - RIGHT, py);
            g.setColor(Color.DARK_GRAY);
            String s = label(y);
            g.drawString(s, LEFT - 8 - fm.stringWidth(s), py + fm.getAscent() / 2 - 2);
        }
        g.setColor(Color.BLACK);
        g.drawLine(LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT, HEIGHT - BOTTOM);
        g.drawLine(LEFT, TOP, LEFT, HEIGHT - BOTTOM);
        String xTitle = "round-trip time (ms), added by a delaying relay";
        g.drawString(xTitle, LEFT + (WIDTH - LEFT - RIGHT - fm.stringWidth(xTitle)) / 2, HEIGHT - BOTTOM + 40);
        Graphics2D rotated = (Graphics2D) g.create();
        rotated.rotate(-Math.PI / 2);
        String yTitle = "close() to close promise (ms)";
        rotated.drawString(yTitle, -(TOP + (HEIGHT - TOP - BOTTOM + fm.stringWidth(yTitle)) / 2), 24);
        rotated.dispose();

        // Reference lines: the physical limit and the goal.
        Stroke dashed = new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {6, 5}, 0);
        g.setStroke(dashed);
        g.setColor(LIMIT);
        g.drawLine(axes.x(0), axes.y(0), axes.x(xMax), axes.y(Math.min(xMax, yMax)));
        g.setColor(GOAL);
        g.drawLine(axes.x(0), axes.y(2), axes.x(xMax), axes.y(Math.min(xMax + 2, yMax)));

        // The RTT as the connections saw it: the median of the one-byte echo before each closure.
        g.setColor(ECHO);
        g.setStroke(new BasicStroke(2f));
        for (CloseLatency.Point p : points) {
            int px = axes.x(p.rttMillis());
            int py = axes.y(Stats.of(p.echo()).median());
            g.drawLine(px - 5, py - 5, px + 5, py + 5);
            g.drawLine(px - 5, py + 5, px + 5, py - 5);
        }

        // Series, side by side around each RTT.
        series(g, axes, points, true, -6);
        series(g, axes, points, false, 6);

        // Title and legend.
        g.setStroke(new BasicStroke(1));
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString("TLS close latency against RTT", LEFT, 28);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        g.drawString(subtitle + "; median with p10..p90 bars; " + Env.loadAverage(), LEFT, 46);
        int lx = LEFT + 20;
        int ly = TOP + 20;
        legend(g, lx, ly, GRACEFUL, null, "GracefulTlsCloseHandler close() (SHUT_RDWR)");
        legend(g, lx, ly + 20, NETTY, null, "SslHandler close() with closeNotifyReadTimeout");
        legend(g, lx, ly + 40, LIMIT, dashed, "physical limit: 1 RTT");
        legend(g, lx, ly + 60, GOAL, dashed, "goal: 1 RTT + 2 ms");
        g.setColor(ECHO);
        g.setStroke(new BasicStroke(2f));
        g.drawLine(lx + 9, ly + 71, lx + 19, ly + 81);
        g.drawLine(lx + 9, ly + 81, lx + 19, ly + 71);
        g.setStroke(new BasicStroke(1));
        g.setColor(Color.BLACK);
        g.drawString("measured RTT: one-byte TLS echo before each closure (median)", lx + 36, ly + 80);
    }

    /** Grouped bars: median minus the nominal RTT, per closer and for the echo, with p10..p90 whiskers. */
    private static void drawOverhead(Graphics2D g, List<CloseLatency.Point> points) {
        int top = 50;
        int bottom = PANEL - 40;
        double yMax = 3.0;
        for (CloseLatency.Point p : points) {
            yMax = Math.max(yMax, Stats.of(p.graceful()).p90() - p.rttMillis());
            yMax = Math.max(yMax, Stats.of(p.netty()).p90() - p.rttMillis());
        }
        yMax = niceCeiling(Math.min(yMax * 1.1, 10));
        double scale = (bottom - top) / yMax;
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.setColor(Color.BLACK);
        g.drawString("Time over the nominal RTT (ms): median, p10..p90 whiskers", LEFT, 28);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        FontMetrics fm = g.getFontMetrics();
        double yStep = step(yMax);
        for (double y = 0; y <= yMax + 1e-9; y += yStep) {
            int py = bottom - (int) Math.round(y * scale);
            g.setColor(new Color(0xEEEEEE));
            g.drawLine(LEFT, py, WIDTH - RIGHT, py);
            g.setColor(Color.DARK_GRAY);
            String label = label(y);
            g.drawString(label, LEFT - 8 - fm.stringWidth(label), py + fm.getAscent() / 2 - 2);
        }
        g.setColor(Color.BLACK);
        g.drawLine(LEFT, bottom, WIDTH - RIGHT, bottom);
        g.drawLine(LEFT, top, LEFT, bottom);
        int groupWidth = (WIDTH - LEFT - RIGHT) / Math.max(1, points.size());
        int bar = Math.min(60, groupWidth / 5);
        for (int i = 0; i < points.size(); i++) {
            CloseLatency.Point p = points.get(i);
            int center = LEFT + groupWidth * i + groupWidth / 2;
            bar(g, center - bar * 3 / 2 - 4, bar, bottom, scale, yMax, Stats.of(p.graceful()), p.rttMillis(),
                    GRACEFUL);
            bar(g, center - bar / 2, bar, bottom, scale, yMax, Stats.of(p.netty()), p.rttMillis(), NETTY);
            bar(g, center + bar / 2 + 4, bar, bottom, scale, yMax, Stats.of(p.echo()), p.rttMillis(), ECHO);
            g.setColor(Color.BLACK);
            String label = "RTT " + p.rttMillis() + " ms";
            g.drawString(label, center - fm.stringWidth(label) / 2, bottom + 18);
        }
        Stroke dashed = new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {6, 5}, 0);
        g.setStroke(dashed);
        g.setColor(GOAL);
        int goal = bottom - (int) Math.round(Math.min(2.0, yMax) * scale);
        g.drawLine(LEFT, goal, WIDTH - RIGHT, goal);
        g.drawString("goal: +2 ms", WIDTH - RIGHT - 70, goal - 4);
        g.setStroke(new BasicStroke(1));
        int lx = WIDTH - RIGHT - 330;
        legendBox(g, lx, 46, GRACEFUL, "GracefulTlsCloseHandler close()");
        legendBox(g, lx, 62, NETTY, "SslHandler close(), closeNotifyReadTimeout");
        legendBox(g, lx, 78, ECHO, "one-byte TLS echo (measured RTT)");
    }

    private static void bar(Graphics2D g, int x, int width, int bottom, double scale, double yMax, Stats s,
                            int rtt, Color c) {
        double median = Math.max(0, s.median() - rtt);
        int h = (int) Math.round(Math.min(median, yMax) * scale);
        g.setColor(c);
        g.fillRect(x, bottom - h, width, h);
        g.setColor(Color.BLACK);
        int lo = bottom - (int) Math.round(Math.min(Math.max(0, s.p10() - rtt), yMax) * scale);
        int hi = bottom - (int) Math.round(Math.min(Math.max(0, s.p90() - rtt), yMax) * scale);
        int mid = x + width / 2;
        g.drawLine(mid, lo, mid, hi);
        g.drawLine(mid - 4, lo, mid + 4, lo);
        g.drawLine(mid - 4, hi, mid + 4, hi);
        String label = String.format(Locale.ROOT, "%.2f", s.median() - rtt);
        g.drawString(label, x + (width - g.getFontMetrics().stringWidth(label)) / 2, Math.min(bottom - h, hi) - 4);
    }

    private static void legendBox(Graphics2D g, int x, int y, Color c, String text) {
        g.setColor(c);
        g.fillRect(x, y - 9, 12, 10);
        g.setColor(Color.BLACK);
        g.drawString(text, x + 18, y);
    }

    private static void series(Graphics2D g, Axes axes, List<CloseLatency.Point> points, boolean graceful, int dx) {
        Color c = graceful ? GRACEFUL : NETTY;
        g.setColor(c);
        int prevX = -1;
        int prevY = -1;
        for (CloseLatency.Point p : points) {
            Stats s = Stats.of(graceful ? p.graceful() : p.netty());
            int px = axes.x(p.rttMillis()) + dx;
            int py = axes.y(s.median());
            g.setStroke(new BasicStroke(1.5f));
            g.drawLine(px, axes.y(s.p10()), px, axes.y(s.p90()));
            g.drawLine(px - 4, axes.y(s.p10()), px + 4, axes.y(s.p10()));
            g.drawLine(px - 4, axes.y(s.p90()), px + 4, axes.y(s.p90()));
            g.setStroke(new BasicStroke(2f));
            if (prevX >= 0) {
                g.drawLine(prevX, prevY, px, py);
            }
            if (graceful) {
                g.fillOval(px - 4, py - 4, 9, 9);
            } else {
                g.fillRect(px - 4, py - 4, 9, 9);
            }
            prevX = px;
            prevY = py;
        }
    }

    private static void legend(Graphics2D g, int x, int y, Color c, Stroke stroke, String text) {
        g.setColor(c);
        g.setStroke(stroke == null ? new BasicStroke(2f) : stroke);
        g.drawLine(x, y - 4, x + 28, y - 4);
        g.setStroke(new BasicStroke(1));
        g.setColor(Color.BLACK);
        g.drawString(text, x + 36, y);
    }

    private record Axes(double xMax, double yMax) {
        int x(double v) {
            return LEFT + (int) Math.round(v / xMax * (WIDTH - LEFT - RIGHT));
        }

        int y(double v) {
            return HEIGHT - BOTTOM - (int) Math.round(Math.min(v, yMax) / yMax * (HEIGHT - TOP - BOTTOM));
        }
    }

    private static double niceCeiling(double v) {
        double magnitude = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 2.5, 5, 10}) {
            if (m * magnitude >= v) {
                return m * magnitude;
            }
        }
        return 10 * magnitude;
    }

    private static double step(double max) {
        return niceCeiling(max / 8);
    }

    private static String label(double v) {
        return v == Math.rint(v) ? String.valueOf((long) v) : String.format(Locale.ROOT, "%.1f", v);
    }
}
