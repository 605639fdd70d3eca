using NativeReft.Cuda;
using NativeReft.Tensors;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/swiglu.cu against CpuBackend&lt;float&gt; on the same bf16 inputs, odd sizes and tails, forward (also in
/// place) and backward: one suite, made concrete per runtime (SwiGluKernelGpuTests, SwiGluKernelEmulatorTests).
/// </summary>
public abstract class SwiGluKernelSuite : KernelSuite<SwiGluKernels>
{
    private static readonly int[] Sizes = [1, 7, 33, 64, 129, 4099, 100_003]; // 64: whole 128-bit packs, no tail

    private protected override SwiGluKernels CreateKernels(IDeviceRuntime device) => new(device);

    [TestCaseSource(nameof(Sizes))]
    public void Forward_matches_the_cpu_backend_also_in_place(int n)
    {
        var gate = RandomBFloat16(n, n, 6f);
        var up = RandomBFloat16(n + 1, n, 2f);
        using var gd = Device.Upload<BFloat16>(gate);
        using var ud = Device.Upload<BFloat16>(up);
        using var output = Device.Allocate<BFloat16>(n);
        Kernels.Forward(gd, ud, output, Stream);
        Stream.Synchronize();
        var expected = Cpu(n, cpu =>
        {
            var o = cpu.Zeros(n);
            cpu.SwiGlu(cpu.Upload(Floats(gate), n), cpu.Upload(Floats(up), n), o);
            return o;
        });
        BFloat16Output.AssertClose(Floats(output), expected, "swiglu");

        Kernels.Forward(gd, ud, gd, Stream); // out aliases gate, as the MLP does it
        Stream.Synchronize();
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
        Kernels.Backward(gd, ud, dd, dGate, dUp, Stream);
        Stream.Synchronize();

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

        Kernels.Backward(gd, ud, dd, gd, ud, Stream); // dgate over gate and dup over up
        Stream.Synchronize();
        Assert.That(gd.ToArray().Select(v => v.Bits), Is.EqualTo(dGate.ToArray().Select(v => v.Bits)), "dgate in place");
        Assert.That(ud.ToArray().Select(v => v.Bits), Is.EqualTo(dUp.ToArray().Select(v => v.Bits)), "dup in place");
    }

    [Test]
    public void Lengths_are_checked_before_launching()
    {
        using var a = Device.Allocate<BFloat16>(10);
        using var b = Device.Allocate<BFloat16>(11);
        Assert.Throws<ArgumentException>(() => Kernels.Forward(a, b, a, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.Backward(a, a, a, a, b, Stream));
    }
}
