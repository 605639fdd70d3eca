using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.NoEmit;

namespace NativeReft.Bench.Gpu;

/// <summary>
/// The GPU suite's job: in process (no child build, so it runs from the self-contained bundle on a machine without
/// the .NET SDK), a few warm-up and measured iterations (each invocation already averages 10 launches), and the
/// GB/s, TFLOP/s and share-of-copy columns.
/// </summary>
public sealed class KernelBenchConfig : ManualConfig
{
    public KernelBenchConfig()
    {
        AddJob(Job.Default.WithToolchain(InProcessNoEmitToolchain.Instance)
            .WithWarmupCount(2).WithIterationCount(5).WithInvocationCount(4).WithUnrollFactor(1).WithId("gpu"));
        AddColumn(new KernelWork.RateColumn(flops: false), new KernelWork.RateColumn(flops: true), new KernelWork.CopyShareColumn());
    }
}
