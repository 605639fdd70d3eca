using System.Text;

namespace NativeReft.Tests.Backends;

/// <summary>
/// |actual - expected| &lt;= Atol + Rtol * |expected|, elementwise (llm.c's validate_result). A failure lists the
/// worst elements and the max absolute and relative error.
/// </summary>
internal readonly record struct Tolerance(double Atol, double Rtol)
{
    public void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, string what)
    {
        if (Compare(actual, expected, what) is { } failure)
        {
            Assert.Fail(failure);
        }
    }

    /// <summary>The parity check itself: null when every element is within tolerance, else what is wrong.</summary>
    public string? Compare(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, string what)
    {
        if (actual.Length != expected.Length)
        {
            return $"{what}: length {actual.Length}, expected {expected.Length}";
        }
        var bad = new List<(int I, double A, double E)>();
        double maxAbs = 0, maxRel = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            maxAbs = Math.Max(maxAbs, err);
            maxRel = Math.Max(maxRel, err / Math.Max(Math.Abs(expected[i]), 1e-30));
            if (!(err <= Atol + Rtol * Math.Abs(expected[i])))
            {
                bad.Add((i, actual[i], expected[i]));
            }
        }
        if (bad.Count > 0)
        {
            var text = new StringBuilder($"{what}: {bad.Count} of {actual.Length} elements outside atol {Atol:G3} + rtol {Rtol:G3}; max abs {maxAbs:G3}, max rel {maxRel:G3}. Worst:");
            foreach (var (i, a, e) in bad.OrderByDescending(b => Math.Abs(b.A - b.E)).Take(5))
            {
                text.Append($"\n  [{i}] got {a:G9}, expected {e:G9}");
            }
            return text.ToString();
        }
        return null;
    }
}
