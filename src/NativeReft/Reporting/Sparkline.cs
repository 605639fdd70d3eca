namespace NativeReft.Reporting;

/// <summary>A loss curve as one line of block characters, for terminals.</summary>
public static class Sparkline
{
    private const string Blocks = "▁▂▃▄▅▆▇█";

    /// <summary>At most <paramref name="width"/> characters: the curve resampled, low to high.</summary>
    public static string Render(IReadOnlyList<double> values, int width = 60)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
        {
            return "";
        }
        int n = Math.Min(width, values.Count);
        var points = Enumerable.Range(0, n).Select(i => values[(int)((long)i * (values.Count - 1) / Math.Max(1, n - 1))]).ToArray();
        double min = points.Min(), max = points.Max();
        return string.Concat(points.Select(v => Blocks[max > min ? (int)Math.Round((v - min) / (max - min) * (Blocks.Length - 1)) : 0]));
    }
}
