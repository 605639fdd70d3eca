using System.Globalization;
using NativeReft.Cuda;

namespace NativeReft.Cli.Commands;

/// <summary>
/// <c>bench train</c>'s breakdown: one more step with every op timed by device events, each op's time beside the
/// work it must do (<see cref="OpWork"/>): TFLOP/s and GB/s, and for the memory-bound ops the share of the
/// device-to-device copy bandwidth measured in the same run (their goal is 70% of it).
/// </summary>
internal static class StepBreakdown
{
    /// <summary>The breakdown's totals, for the JSON line.</summary>
    /// <param name="CopyGigabytesPerSecond">The measured device-to-device copy, or null when it failed.</param>
    /// <param name="Compute">The compute-bound ops together.</param>
    /// <param name="Memory">The memory-bound ops together.</param>
    public sealed record Totals(double? CopyGigabytesPerSecond, OpTime Compute, OpTime Memory)
    {
        /// <summary>JSON fields (no braces), the numbers in invariant culture.</summary>
        public string JsonFields() => Text(
            $"\"copy_gb_s\": {Json(CopyGigabytesPerSecond)}, \"compute_ms\": {Compute.Milliseconds:F2}, \"compute_tflops\": {Compute.TeraflopsPerSecond:G6}, \"memory_ms\": {Memory.Milliseconds:F2}, \"memory_gb_s\": {Memory.GigabytesPerSecond:G6}");

        private static string Json(double? value) => value is { } v ? v.ToString("F1", CultureInfo.InvariantCulture) : "null";
    }

    public static Totals Print(TextWriter output, CudaBackend gpu, Action step)
    {
        double? copy = MeasureCopy(gpu, out string copyText);
        using var profiler = new OpProfiler(gpu.Runtime);
        gpu.Profiler = profiler;
        try
        {
            step();
            profiler.Collect();
        }
        finally
        {
            gpu.Profiler = null;
        }
        var ops = profiler.Totals.OrderByDescending(t => t.Value.Milliseconds).ToList();
        double total = ops.Sum(t => t.Value.Milliseconds);
        output.WriteLine(Text($"device time by op (one profiled step, {total:F1} ms in ops; {copyText}):"));
        output.WriteLine(Text($"  {"op",-34} {"ms",10} {"%",6} {"calls",6} {"TFLOP/s",8} {"GB/s",8} {"of copy",7}"));
        foreach (var (name, time) in ops)
        {
            string flops = time.Work.Flops > 0 ? Rate(time.TeraflopsPerSecond) : "-";
            string share = time.Work.MemoryBound ? Percent(time.GigabytesPerSecond, copy) : "";
            output.WriteLine(Text($"  {name,-34} {time.Milliseconds,10:F2} {100 * time.Milliseconds / total,5:F1}% {time.Calls,6} {flops,8} {Rate(time.GigabytesPerSecond),8} {share,7}"));
        }
        var memory = Sum(ops.Where(t => t.Value.Work.MemoryBound));
        var compute = Sum(ops.Where(t => !t.Value.Work.MemoryBound));
        output.WriteLine(Text(
            $"  compute-bound ops: {compute.Milliseconds:F1} ms at {Rate(compute.TeraflopsPerSecond)} TFLOP/s; memory-bound ops (under {OpWork.MemoryBoundIntensity} FLOP/byte): {memory.Milliseconds:F1} ms moving {memory.Work.Bytes / 1e9:F3} GB, {Percent(memory.GigabytesPerSecond, copy)} of the copy bandwidth"));
        return new Totals(copy, compute, memory);
    }

    // A GiB on a GPU (less when memory is short), 16 MiB on the emulator, whose copies run on the CPU. A failed
    // measurement costs the percentages, not the breakdown.
    private static double? MeasureCopy(CudaBackend gpu, out string text)
    {
        var runtime = gpu.Runtime;
        bool onGpu = runtime is CudaRuntime;
        long bytes = onGpu ? Math.Clamp(runtime.GetMemoryInfo().FreeBytes / 4, 16L << 20, 1L << 30) : 16L << 20;
        try
        {
            double rate = CopyBandwidth.Measure(runtime, gpu.Stream, bytes, onGpu ? 10 : 2);
            text = Text($"device-to-device copy {rate:F0} GB/s");
            return rate;
        }
        catch (CudaException e)
        {
            text = $"device-to-device copy not measured: {e.Message}";
            return null;
        }
    }

    private static OpTime Sum(IEnumerable<KeyValuePair<string, OpTime>> ops) =>
        ops.Aggregate(default(OpTime), (sum, op) => new OpTime(sum.Milliseconds + op.Value.Milliseconds, sum.Calls + op.Value.Calls, sum.Work + op.Value.Work));

    // Three significant figures or so: thousands of GB/s on a GPU, fractions on the emulator.
    private static string Rate(double value) =>
        value.ToString(value >= 100 ? "F0" : value >= 1 ? "F1" : "G2", CultureInfo.InvariantCulture);

    private static string Percent(double rate, double? copy) => copy is { } c ? Text($"{100 * rate / c:F0}%") : "-";

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
