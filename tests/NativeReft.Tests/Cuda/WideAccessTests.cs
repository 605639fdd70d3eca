using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// The memory-bound kernels that move most of a training step's bytes load and store 128 bits at a time
/// (<c>Pack&lt;T, W&gt;</c> in kernels/common.cuh). The bandwidth goal (70% of a device-to-device copy) rests on it,
/// and neither the emulator nor a parity test can see it: a kernel that falls back to 2-byte accesses still gives the
/// right numbers. So it is checked in the PTX NVRTC emits for sm_90: each kernel's body must hold a 128-bit global
/// load (<c>ld.global[.nc].v4</c>) and a 128-bit global store (<c>st.global.v4</c>).
/// </summary>
public sealed partial class WideAccessTests
{
    // (file, kernel): per layer of the Llama-2-7B step (8 x 512 tokens), SwiGLU moves about 690 MiB, the RMSNorm row
    // kernels (with the residual add) about 450 MiB and RoPE 256 MiB: nearly all of its memory-bound bytes.
    private static readonly (string File, string Kernel)[] PackedKernels =
    [
        ("swiglu.cu", "swiglu_forward"), ("swiglu.cu", "swiglu_backward"),
        ("elementwise.cu", "add_forward"),
        ("rmsnorm.cu", "rmsnorm_forward"), ("rmsnorm.cu", "rmsnorm_f32w_forward"), ("rmsnorm.cu", "rmsnorm_residual_forward"),
        ("rmsnorm.cu", "rmsnorm_residual_f32w_forward"), ("rmsnorm.cu", "rmsnorm_add_forward"),
        ("rmsnorm.cu", "rmsnorm_backward"), ("rmsnorm.cu", "rmsnorm_f32w_backward"),
        ("rope.cu", "rope_forward"), ("rope.cu", "rope_backward"),
    ];

    private static readonly ConcurrentDictionary<string, string> PtxByFile = new();

    private static IEnumerable<TestCaseData> Kernels() =>
        PackedKernels.Select(k => new TestCaseData(k.File, k.Kernel).SetName($"{k.Kernel} moves 128 bits per access"));

    [TestCaseSource(nameof(Kernels))]
    public void Kernel_loads_and_stores_128_bits_at_a_time(string file, string kernel)
    {
        string body = EntryBody(Ptx(file), kernel);
        Assert.That(WideLoad().IsMatch(body), Is.True, $"{kernel}: no 128-bit global load (ld.global.v4) in its PTX");
        Assert.That(WideStore().IsMatch(body), Is.True, $"{kernel}: no 128-bit global store (st.global.v4) in its PTX");
    }

    [Test]
    public void A_scalar_kernel_is_not_taken_for_a_packed_one()
    {
        // fill_forward writes one float per thread: the check must not find wide accesses where there are none.
        string body = EntryBody(Ptx("elementwise.cu"), "fill_forward");
        Assert.That(WideStore().IsMatch(body), Is.False);
        Assert.That(body, Does.Contain("st.global"));
    }

    private static string Ptx(string file) => PtxByFile.GetOrAdd(file, name =>
    {
        CudaTestSupport.RequireNvrtc();
        var image = new NvrtcCompiler().Compile(KernelSources.Get(name), new KernelCompileOptions("compute_90"));
        Assert.That(image.Kind, Is.EqualTo(KernelImageKind.Ptx));
        return Encoding.UTF8.GetString(image.Image).TrimEnd('\0');
    });

    /// <summary>The PTX of one entry, from its ".entry name(" to the next entry (device functions are inlined).</summary>
    private static string EntryBody(string ptx, string kernel)
    {
        int start = ptx.IndexOf($".entry {kernel}(", StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThanOrEqualTo(0), $"{kernel} is not in the PTX");
        int next = ptx.IndexOf(".entry ", start + 7, StringComparison.Ordinal);
        return next < 0 ? ptx[start..] : ptx[start..next];
    }

    [GeneratedRegex(@"\bld\.global(\.nc)?(\.L[12]::\w+)*\.v4\.(b32|u32|s32|f32)\b")]
    private static partial Regex WideLoad();

    [GeneratedRegex(@"\bst\.global(\.L[12]::\w+)*\.v4\.(b32|u32|s32|f32)\b")]
    private static partial Regex WideStore();
}
