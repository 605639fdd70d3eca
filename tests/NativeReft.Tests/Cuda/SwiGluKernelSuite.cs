using NativeReft.Cuda;
using NativeReft.Tensors;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/swiglu.cu against CpuBackend&lt;float&gt; on the same bf16 inputs, odd sizes and tails, forward (also in
/// place) and backward: one suite, made concrete per runtime (SwiGluKernelGpuTests, SwiGluKernelEmulatorTests).
/// </summary>
public abstract class SwiGluKernelSuite
{
    private static readonly int[] Sizes = [1, 7, 33, 129, 4099, 100_003];

    private SwiGluKernels kernels = null!;
    private DeviceStream stream = null!;

    /// <summary>The launcher under test.</summary>
    protected SwiGluKernels Kernels => kernels;

    /// <summary>The shared runtime the suite runs on, or Assert.Ignore/Fail with the reason there is none.</summary>
    protected abstract IDeviceRuntime Device { get; }

    [OneTimeSetUp]
    public void LoadKernels()
    {
        kernels = new SwiGluKernels(Device);
        stream = Device.CreateStream();
    }

    [OneTimeTearDown]
    public void UnloadKernels()
    {
        stream?.Dispose();
        kernels?.Dispose();
    }

    [TestCaseSource(nameof(Sizes))]
    public void Forward_matches_the_cpu_backend_also_in_place(int n)
    {
        var gate = RandomBFloat16(n, n, 6f);
        var up = RandomBFloat16(n + 1, n, 2f);
        using var gd = Device.Upload<BFloat16>(gate);
        using var ud = Device.Upload<BFloat16>(up);
        using var output = Device.Allocate<BFloat16>(n);
        kernels.Forward(gd, ud, output, stream);
        stream.Synchronize();
        var expected = Cpu(n, cpu =>
        {
            var o = cpu.Zeros(n);
            cpu.SwiGlu(cpu.Upload(Floats(gate), n), cpu.Upload(Floats(up), n), o);
            return o;
        });
        BFloat16Output.AssertClose(Floats(output), expected, "swiglu");

        kernels.Forward(gd, ud, gd, stream); // out aliases gate, as the MLP does it
        stream.Synchronize();
        Assert.That(gd.ToArray().Select(v => v.Bits), Is.EqualTo(output.ToArray().Select(v => v.Bits)), "in place");
    }

    [TestCaseSource(nameof(Sizes))]
    public void Backward_matches_the_cpu_backend(int n)
    {
        var gate = RandomBFloat16(n + 2, n, 6f);
        var up = RandomBFloat16(n + 3, n, 2f);
        var dOut = RandomBFloat16(n + 4, n);
        using var gd = Device.Upload<BFloat16>(gate);
        using var ud = Device.Upload<BFloat16>(up);
        using var dd = Device.Upload<BFloat16>(dOut);
        using var dGate = Device.Allocate<BFloat16>(n);
        using var dUp = Device.Allocate<BFloat16>(n);
        kernels.Backward(gd, ud, dd, dGate, dUp, stream);
        stream.Synchronize();

        using var cpu = new NativeReft.Backends.Cpu.CpuBackend<float>(threads: 1);
        using var dg = cpu.Zeros(n);
        using var du = cpu.Zeros(n);
        cpu.SwiGluBackward(cpu.Upload(Floats(gate), n), cpu.Upload(Floats(up), n), cpu.Upload(Floats(dOut), n), dg, du);
        var expectedGate = new float[n];
        var expectedUp = new float[n];
        cpu.Download(dg, expectedGate);
        cpu.Download(du, expectedUp);
        BFloat16Output.AssertClose(Floats(dGate), Doubles(expectedGate), "swiglu dgate");
        BFloat16Output.AssertClose(Floats(dUp), Doubles(expectedUp), "swiglu dup");

        kernels.Backward(gd, ud, dd, gd, ud, stream); // dgate over gate and dup over up
        stream.Synchronize();
        Assert.That(gd.ToArray().Select(v => v.Bits), Is.EqualTo(dGate.ToArray().Select(v => v.Bits)), "dgate in place");
        Assert.That(ud.ToArray().Select(v => v.Bits), Is.EqualTo(dUp.ToArray().Select(v => v.Bits)), "dup in place");
    }

    [Test]
    public void Lengths_are_checked_before_launching()
    {
        using var a = Device.Allocate<BFloat16>(10);
        using var b = Device.Allocate<BFloat16>(11);
        Assert.Throws<ArgumentException>(() => kernels.Forward(a, b, a, stream));
        Assert.Throws<ArgumentException>(() => kernels.Backward(a, a, a, a, b, stream));
    }
}
