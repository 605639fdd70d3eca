namespace NativeReft.Tests.Backends;

/// <summary>Central finite differences in float64, compared with an analytic gradient element by element.</summary>
internal static class GradientCheck
{
    /// <summary>
    /// Asserts |analytic - numeric| &lt;= maxRelative * max(|analytic|, |numeric|, floor) for every element of
    /// <paramref name="x"/>, where numeric = (f(x + e) - f(x - e)) / 2e. The floor keeps gradients near zero from
    /// being judged by the difference quotient's rounding noise (about 1e-16 |f| / e).
    /// </summary>
    public static void AssertMatches(string what, double[] x, double[] analytic, Func<double> loss,
        double maxRelative = 1e-6, double step = 1e-5, double floor = 1e-4, int stride = 1)
    {
        Assert.That(analytic, Has.Length.EqualTo(x.Length), what);
        double worst = 0;
        int worstIndex = -1;
        double worstNumeric = 0;
        // A stride samples every stride-th element (and the last) where each loss evaluation is a whole model.
        for (int i = 0; i < x.Length; i = i + stride < x.Length || i == x.Length - 1 ? i + stride : x.Length - 1)
        {
            double saved = x[i];
            x[i] = saved + step;
            double plus = loss();
            x[i] = saved - step;
            double minus = loss();
            x[i] = saved;
            double numeric = (plus - minus) / (2 * step);
            double error = Math.Abs(analytic[i] - numeric) / Math.Max(Math.Max(Math.Abs(analytic[i]), Math.Abs(numeric)), floor);
            if (error > worst)
            {
                (worst, worstIndex, worstNumeric) = (error, i, numeric);
            }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(maxRelative),
            $"{what}: worst relative error {worst:G3} at [{worstIndex}]: analytic {(worstIndex >= 0 ? analytic[worstIndex] : 0):G9}, numeric {worstNumeric:G9}");
    }
}
