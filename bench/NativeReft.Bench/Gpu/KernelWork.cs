using System.Collections.Concurrent;
using System.Globalization;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using NativeReft.Cuda;

namespace NativeReft.Bench.Gpu;

/// <summary>
/// Bytes and FLOPs per launch of each benchmark case (<see cref="OpWork"/>, the engine's formulas), recorded by the
/// benchmark's setup (the suite runs in process, so the columns read them back), and the columns they make with
/// the measured mean: GB/s, TFLOP/s, and for a memory-bound case its share of <see cref="Perf_DeviceCopy"/>'s
/// bandwidth in the same (joined) run.
/// </summary>
internal static class KernelWork
{
    private static readonly ConcurrentDictionary<string, OpWork> Work = new();

    public static void Record(string type, string method, string shape, OpWork work) => Work[$"{type}.{method}.{shape}"] = work;

    public static OpWork? Lookup(BenchmarkCase benchmark)
    {
        string shape = benchmark.Parameters.Items.FirstOrDefault(p => p.Name == "Shape")?.Value?.ToString() ?? "";
        return Work.TryGetValue($"{benchmark.Descriptor.Type.Name}.{benchmark.Descriptor.WorkloadMethod.Name}.{shape}", out var w) ? w : null;
    }

    // 10^9 bytes or 10^12 FLOPs per second from the mean time of one launch, when both are known.
    private static double? Rate(Summary summary, BenchmarkCase benchmark, bool flops)
    {
        if (summary[benchmark]?.ResultStatistics is not { } stats || Lookup(benchmark) is not { } work)
        {
            return null;
        }
        double amount = flops ? work.Flops : work.Bytes;
        return amount > 0 ? amount / (stats.Mean * 1e-9) / (flops ? 1e12 : 1e9) : null; // Mean is nanoseconds per operation
    }

    /// <summary>GB/s or TFLOP/s.</summary>
    internal sealed class RateColumn(bool flops) : BenchColumn(flops ? "TFLOPs" : "GBps", flops ? "TFLOP/s" : "GB/s", flops ? 1 : 0,
        flops ? "FLOPs per launch over the mean time, in 10^12 per second" : "bytes the op must move per launch over the mean time, in 10^9 per second")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            Rate(summary, benchmarkCase, flops)?.ToString("F1", CultureInfo.InvariantCulture) ?? "-";
    }

    /// <summary>A memory-bound case's GB/s over the fastest device-to-device copy in the summary (the goal: 70%).</summary>
    internal sealed class CopyShareColumn() : BenchColumn("OfCopy", "of copy", 2,
        $"a memory-bound case's GB/s (under {OpWork.MemoryBoundIntensity} FLOP/byte) over Perf_DeviceCopy's in the same run (--join); the goal is 70%")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            double? copy = summary.BenchmarksCases.Where(b => b.Descriptor.Type == typeof(Perf_DeviceCopy))
                .Select(b => Rate(summary, b, flops: false)).Max();
            if (Lookup(benchmarkCase) is not { MemoryBound: true } || copy is not > 0 || Rate(summary, benchmarkCase, flops: false) is not { } rate)
            {
                return "-";
            }
            return (100 * rate / copy.Value).ToString("F0", CultureInfo.InvariantCulture) + "%";
        }
    }
}
