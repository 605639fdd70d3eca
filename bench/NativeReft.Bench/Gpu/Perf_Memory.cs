using BenchmarkDotNet.Attributes;
using NativeReft.Cuda;
using NativeReft.Tensors;

namespace NativeReft.Bench.Gpu;

/// <summary>The bandwidth ceiling every memory-bound kernel is held against: a large device-to-device copy.</summary>
public class Perf_DeviceCopy : KernelBench
{
    private DeviceBuffer<byte> source = null!;
    private DeviceBuffer<byte> destination = null!;

    private static long Bytes => OnGpu ? 1L << 30 : 16L << 20;

    protected override void SetUp()
    {
        source = Own(Device.Allocate<byte>(Bytes));
        destination = Own(Device.Allocate<byte>(Bytes));
        source.Clear(Stream);
        Work(nameof(Copy), OpWork.Elementwise(Bytes, 1, reads: 1)); // read once, written once
    }

    protected override void CleanUp()
    {
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Copy()
    {
        for (int i = 0; i < Launches; i++)
        {
            Device.CopyDeviceToDevice(destination.Pointer, source.Pointer, Bytes, Stream);
        }
        Wait();
    }
}

/// <summary>The token embedding: a row gather from the (vocab, dim) table.</summary>
public class Perf_Embedding : KernelBench
{
    private EmbeddingKernels kernels = null!;
    private DeviceBuffer<BFloat16> table = null!;
    private DeviceBuffer<int> tokens = null!;
    private DeviceBuffer<BFloat16> output = null!;

    protected override void SetUp()
    {
        kernels = new EmbeddingKernels(Device);
        var c = Config;
        table = RandomBFloat16((long)c.VocabSize * c.Dim);
        var rng = new Random(1);
        tokens = Own(Device.Upload<int>(Enumerable.Range(0, Tokens).Select(_ => rng.Next(c.VocabSize)).ToArray()));
        output = Own(Device.Allocate<BFloat16>((long)Tokens * c.Dim));
        Work(nameof(Gather), OpWork.Rows(Tokens, c.Dim));
    }

    protected override void CleanUp() => kernels.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Gather()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Forward(table, Config.Dim, tokens, output, default, Stream);
        }
        Wait();
    }
}
