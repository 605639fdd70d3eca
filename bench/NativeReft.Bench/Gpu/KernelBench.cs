using BenchmarkDotNet.Attributes;
using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.Bench.Gpu;

/// <summary>
/// What every GPU kernel benchmark shares: the device (the first GPU, or the kernel emulator where there is none,
/// at the small shape only: emulator times say nothing about speed, they check the suite runs), a stream, the
/// shape from the engine's registry, and the bytes and FLOPs of each benchmark for the GB/s and TFLOP/s columns.
/// A method queues <see cref="Launches"/> launches and waits, so BenchmarkDotNet reports the time of one launch.
/// </summary>
[Config(typeof(KernelBenchConfig))]
public abstract class KernelBench
{
    /// <summary>Launches per benchmark invocation (OperationsPerInvoke).</summary>
    public const int Launches = 10;

    private static readonly Lazy<IDeviceRuntime> SharedDevice = new(() =>
        ComputeDevices.GpuAvailable(out _) ? CudaRuntime.Create() : EmulatorRuntime.Create(check: false));

    /// <summary>The device every benchmark runs on.</summary>
    protected static IDeviceRuntime Device => SharedDevice.Value;

    /// <summary>Whether that is a GPU (else the emulator).</summary>
    protected static bool OnGpu => Device is CudaRuntime;

    /// <summary>The model shape (from <see cref="ModelShapes"/>).</summary>
    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "odd";

    /// <summary>Rows: batch x sequence (8 x 512 on a GPU; 64 under the emulator).</summary>
    public static int Tokens => OnGpu ? 4096 : 64;

    /// <summary>
    /// The shapes the issue names and one odd size, or those NATIVEREFT_BENCH_SHAPES lists (comma-separated, e.g.
    /// "llama2-7b" when a GPU lease has time for one); the odd one alone under the emulator.
    /// </summary>
    public static IEnumerable<string> Shapes() => OnGpu ? ChosenShapes(Environment.GetEnvironmentVariable(ShapesVariable)) : ["odd"];

    /// <summary>The environment variable that picks <see cref="Shapes"/> on a GPU.</summary>
    public const string ShapesVariable = "NATIVEREFT_BENCH_SHAPES";

    /// <summary>The shapes a NATIVEREFT_BENCH_SHAPES value names (empty or "all": every default one), each checked.</summary>
    public static string[] ChosenShapes(string? list)
    {
        string[] all = ["llama2-7b", "llama3-8b", "tinyllama-1.1b", "odd"];
        string[] names = (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0 || names is ["all"])
        {
            return all;
        }
        foreach (string name in names)
        {
            ModelShapes.ByName(name); // an unknown name stops the suite with the list of known ones
        }
        return names;
    }

    /// <summary>The shape's config.</summary>
    protected LlamaConfig Config => ModelShapes.ByName(Shape);

    /// <summary>The stream launches go to.</summary>
    protected DeviceStream Stream { get; private set; } = null!;

    private readonly List<IDisposable> owned = [];

    [GlobalSetup]
    public void SetUpDevice()
    {
        Stream = Device.CreateStream();
        SetUp();
        Stream.Synchronize();
    }

    [GlobalCleanup]
    public void CleanUpDevice()
    {
        CleanUp();
        foreach (var d in owned)
        {
            d.Dispose();
        }
        owned.Clear();
        Stream.Dispose();
    }

    /// <summary>Loads the kernels and fills the inputs.</summary>
    protected abstract void SetUp();

    /// <summary>Releases the kernels.</summary>
    protected abstract void CleanUp();

    /// <summary>Records what benchmark <paramref name="method"/> must move and compute, per launch (the engine's formulas).</summary>
    protected void Work(string method, OpWork work) =>
        KernelWork.Record(GetType().Name, method, Shape, work);

    /// <summary>Waits for the launches of one invocation.</summary>
    protected void Wait() => Stream.Synchronize();

    /// <summary>Random bf16 values in [-scale, scale) (never zeros: they can run faster than real data).</summary>
    protected DeviceBuffer<BFloat16> RandomBFloat16(long length, float scale = 1f)
    {
        var buffer = Own(Device.Allocate<BFloat16>(length));
        using var elementwise = new ElementwiseKernels(Device);
        elementwise.FillUniform(buffer, (ulong)owned.Count * 7919, scale, Stream);
        return buffer;
    }

    /// <summary>Random f32 values in [-scale, scale).</summary>
    protected DeviceBuffer<float> RandomFloat(long length, float scale = 1f)
    {
        using var bf16 = Device.Allocate<BFloat16>(length);
        using var elementwise = new ElementwiseKernels(Device);
        elementwise.FillUniform(bf16, (ulong)owned.Count * 7919 + 1, scale, Stream);
        var buffer = Own(Device.Allocate<float>(length));
        elementwise.Cast(bf16.View, buffer, Stream);
        Stream.Synchronize();
        return buffer;
    }

    /// <summary>A buffer released after the benchmark.</summary>
    protected T Own<T>(T resource)
        where T : IDisposable
    {
        owned.Add(resource);
        return resource;
    }
}
