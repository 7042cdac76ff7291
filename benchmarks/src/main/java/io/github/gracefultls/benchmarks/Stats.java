package io.github.gracefultls.benchmarks;

import java.util.Arrays;
import java.util.Locale;

/** Order statistics of a sample: median and spread, the way BENCHMARKS.md reports them. */
record Stats(int n, double min, double p10, double median, double p90, double max) {

    static Stats of(double[] values) {
        if (values.length == 0) {
            return new Stats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
        }
        double[] v = values.clone();
        Arrays.sort(v);
        return new Stats(v.length, v[0], quantile(v, 0.10), quantile(v, 0.50), quantile(v, 0.90), v[v.length - 1]);
    }

    static Stats of(java.util.List<Double> values) {
        return of(values.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** Linear interpolation between closest ranks, as R's type 7 and numpy's default. */
    private static double quantile(double[] sorted, double q) {
        double pos = q * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = (int) Math.ceil(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    static double median(double[] values) {
        return of(values).median();
    }

    /** Formats as "median (p10..p90, min..max)" with the given number format, e.g. "%.2f". */
    String format(String fmt) {
        return String.format(Locale.ROOT, fmt + " (p10 " + fmt + " .. p90 " + fmt + ", min " + fmt + " .. max "
                + fmt + ")", median, p10, p90, min, max);
    }
}
