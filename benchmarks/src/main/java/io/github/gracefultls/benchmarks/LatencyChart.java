package io.github.gracefultls.benchmarks;

import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.chart.renderer.xy.XYErrorRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.data.xy.YIntervalSeries;
import org.jfree.data.xy.YIntervalSeriesCollection;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.Shape;
import java.awt.Stroke;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.DecimalFormat;
import java.util.List;

/**
 * Draws close latency against RTT from measured {@link CloseLatency.Point}s as a PNG, with JFreeChart. Top: for each
 * closer the median with its p10..p90 spread, the physical limit (1 RTT) and the goal (1 RTT + 2 ms), and the RTT
 * the connections measured (a one-byte echo). Bottom: the medians' time over the nominal RTT, where the closers
 * differ.
 */
final class LatencyChart {

    private static final int WIDTH = 900;
    private static final int TOP_HEIGHT = 560;
    private static final int BOTTOM_HEIGHT = 320;
    private static final Color GRACEFUL = new Color(0x1F77B4);
    private static final Color NETTY = new Color(0xFF7F0E);
    private static final Color LIMIT = new Color(0x555555);
    private static final Color GOAL = new Color(0x2CA02C);
    private static final Color ECHO = new Color(0x9467BD);
    private static final Stroke DASHED =
            new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {6, 5}, 0);

    private LatencyChart() {
    }

    static void write(Path file, String subtitle, List<CloseLatency.Point> points) throws IOException {
        System.setProperty("java.awt.headless", "true");
        BufferedImage image = new BufferedImage(WIDTH, TOP_HEIGHT + BOTTOM_HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            latency(subtitle, points).draw(g, new Rectangle2D.Double(0, 0, WIDTH, TOP_HEIGHT));
            overhead(points).draw(g, new Rectangle2D.Double(0, TOP_HEIGHT, WIDTH, BOTTOM_HEIGHT));
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

    private static JFreeChart latency(String subtitle, List<CloseLatency.Point> points) {
        YIntervalSeries graceful = new YIntervalSeries("GracefulTlsCloseHandler close() (SHUT_RDWR)");
        YIntervalSeries netty = new YIntervalSeries("SslHandler close() with closeNotifyReadTimeout");
        XYSeries limit = new XYSeries("physical limit: 1 RTT");
        XYSeries goal = new XYSeries("goal: 1 RTT + 2 ms");
        XYSeries echo = new XYSeries("measured RTT: one-byte TLS echo before each closure (median)");
        for (CloseLatency.Point p : points) {
            Stats g = Stats.of(p.graceful());
            Stats n = Stats.of(p.netty());
            graceful.add(p.rttMillis(), g.median(), g.p10(), g.p90());
            netty.add(p.rttMillis(), n.median(), n.p10(), n.p90());
            limit.add(p.rttMillis(), p.rttMillis());
            goal.add(p.rttMillis(), p.rttMillis() + 2.0);
            echo.add(p.rttMillis(), Stats.of(p.echo()).median());
        }
        YIntervalSeriesCollection closers = new YIntervalSeriesCollection();
        closers.addSeries(graceful);
        closers.addSeries(netty);
        XYErrorRenderer closerRenderer = new XYErrorRenderer();
        closerRenderer.setDefaultLinesVisible(true);
        closerRenderer.setDrawXError(false);
        closerRenderer.setErrorPaint(null); // the series' own colour
        closerRenderer.setSeriesPaint(0, GRACEFUL);
        closerRenderer.setSeriesPaint(1, NETTY);
        closerRenderer.setSeriesStroke(0, new BasicStroke(2f));
        closerRenderer.setSeriesStroke(1, new BasicStroke(2f));

        XYSeriesCollection references = new XYSeriesCollection();
        references.addSeries(limit);
        references.addSeries(goal);
        references.addSeries(echo);
        XYLineAndShapeRenderer referenceRenderer = new XYLineAndShapeRenderer();
        referenceRenderer.setSeriesPaint(0, LIMIT);
        referenceRenderer.setSeriesPaint(1, GOAL);
        referenceRenderer.setSeriesPaint(2, ECHO);
        referenceRenderer.setSeriesStroke(0, DASHED);
        referenceRenderer.setSeriesStroke(1, DASHED);
        referenceRenderer.setSeriesShapesVisible(0, false);
        referenceRenderer.setSeriesShapesVisible(1, false);
        referenceRenderer.setSeriesLinesVisible(2, false);
        referenceRenderer.setSeriesShape(2, cross());

        NumberAxis x = new NumberAxis("round-trip time (ms), added by a delaying relay");
        NumberAxis y = new NumberAxis("close() to close promise (ms)");
        y.setAutoRangeIncludesZero(true);
        XYPlot plot = new XYPlot(closers, x, y, closerRenderer);
        plot.setDataset(1, references);
        plot.setRenderer(1, referenceRenderer);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xDDDDDD));
        plot.setRangeGridlinePaint(new Color(0xDDDDDD));

        JFreeChart chart = new JFreeChart("TLS close latency against RTT",
                new Font(Font.SANS_SERIF, Font.BOLD, 16), plot, true);
        chart.addSubtitle(new TextTitle(subtitle + "; median with p10..p90 bars; " + Env.loadAverage(),
                new Font(Font.SANS_SERIF, Font.PLAIN, 12)));
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    private static JFreeChart overhead(List<CloseLatency.Point> points) {
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        double max = 2.0; // the goal stays in view
        for (CloseLatency.Point p : points) {
            max = Math.max(max, Math.max(Stats.of(p.graceful()).median(), Stats.of(p.netty()).median())
                    - p.rttMillis());
            String rtt = "RTT " + p.rttMillis() + " ms";
            data.addValue(Stats.of(p.graceful()).median() - p.rttMillis(), "GracefulTlsCloseHandler close()", rtt);
            data.addValue(Stats.of(p.netty()).median() - p.rttMillis(), "SslHandler close(), closeNotifyReadTimeout",
                    rtt);
            data.addValue(Stats.of(p.echo()).median() - p.rttMillis(), "one-byte TLS echo (measured RTT)", rtt);
        }
        BarRenderer bars = new BarRenderer();
        bars.setBarPainter(new StandardBarPainter());
        bars.setShadowVisible(false);
        bars.setSeriesPaint(0, GRACEFUL);
        bars.setSeriesPaint(1, NETTY);
        bars.setSeriesPaint(2, ECHO);
        bars.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator("{2}", new DecimalFormat("0.00")));
        bars.setDefaultItemLabelsVisible(true);
        NumberAxis y = new NumberAxis("median - RTT (ms)");
        y.setRange(0, max * 1.2);
        CategoryPlot plot = new CategoryPlot(data, new CategoryAxis(null), y, bars);
        ValueMarker goal = new ValueMarker(2.0, GOAL, DASHED);
        goal.setLabel("goal: +2 ms");
        goal.setLabelPaint(GOAL);
        goal.setLabelAnchor(RectangleAnchor.TOP_RIGHT);
        goal.setLabelTextAnchor(TextAnchor.BOTTOM_RIGHT);
        plot.addRangeMarker(goal);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(0xDDDDDD));
        JFreeChart chart = new JFreeChart("Time over the nominal RTT (ms): medians",
                new Font(Font.SANS_SERIF, Font.BOLD, 14), plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    private static Shape cross() {
        Path2D.Double p = new Path2D.Double();
        p.moveTo(-5, -5);
        p.lineTo(5, 5);
        p.moveTo(-5, 5);
        p.lineTo(5, -5);
        return new BasicStroke(2f).createStrokedShape(p);
    }
}
