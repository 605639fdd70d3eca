using System.Collections.Concurrent;
using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace NativeReft.Bench.Gpu;

/// <summary>
/// Bytes and FLOPs per launch of each benchmark case, recorded by the benchmark's setup (the suite runs in
/// process, so the columns read them back), and the GB/s and TFLOP/s columns they make with the measured mean.
/// Bytes are the fewest the op must move: each input read once, each output written once.
/// </summary>
internal static class KernelWork
{
    private static readonly ConcurrentDictionary<string, (double Bytes, double Flops)> Work = new();

    public static void Record(string type, string method, string shape, double bytes, double flops) =>
        Work[$"{type}.{method}.{shape}"] = (bytes, flops);

    public static (double Bytes, double Flops)? Lookup(BenchmarkCase benchmark)
    {
        string shape = benchmark.Parameters.Items.FirstOrDefault(p => p.Name == "Shape")?.Value?.ToString() ?? "";
        return Work.TryGetValue($"{benchmark.Descriptor.Type.Name}.{benchmark.Descriptor.WorkloadMethod.Name}.{shape}", out var w) ? w : null;
    }

    /// <summary>GB/s (10^9 bytes per second) or TFLOP/s from the mean time of one launch.</summary>
    internal sealed class RateColumn(bool flops) : IColumn
    {
        public string Id => flops ? "TFLOPs" : "GBps";
        public string ColumnName => flops ? "TFLOP/s" : "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => flops ? 1 : 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => flops ? "FLOPs per launch over the mean time, in 10^12 per second" : "bytes the op must move per launch over the mean time, in 10^9 per second";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            var work = Lookup(benchmarkCase);
            if (summary[benchmarkCase]?.ResultStatistics is not { } stats || work is not { } w)
            {
                return "-";
            }
            double amount = flops ? w.Flops : w.Bytes;
            double rate = amount / (stats.Mean * 1e-9) / (flops ? 1e12 : 1e9); // Mean is nanoseconds per operation
            return amount > 0 ? rate.ToString("F1", CultureInfo.InvariantCulture) : "-";
        }

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
    }
}
