using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

public sealed class PtxasReportTests
{
    // A log as NVRTC 11.8 writes it, with a device function that was not inlined between two entries.
    private const string Log = """
        ptxas info    : 8 bytes gmem
        ptxas info    : Compiling entry function 'rowsumsq_forward' for 'sm_80'
        ptxas info    : Function properties for rowsumsq_forward
        ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
        ptxas info    : Used 16 registers, 128 bytes smem, 376 bytes cmem[0]
        ptxas info    : Function properties for _Z6helperPf
        ptxas         .     48 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
        ptxas info    : Compiling entry function 'big_forward' for 'sm_80'
        ptxas info    : Function properties for big_forward
        ptxas         .     256 bytes stack frame, 40 bytes spill stores, 24 bytes spill loads
        ptxas info    : Used 255 registers, 376 bytes cmem[0]
        """;

    [Test]
    public void Each_entry_function_gets_its_registers_shared_memory_and_spills()
    {
        var kernels = PtxasReport.Parse(Log);
        Assert.That(kernels, Is.EqualTo(new[]
        {
            new KernelResourceUsage("rowsumsq_forward", "sm_80", 16, 128, 0, 0, 0),
            new KernelResourceUsage("big_forward", "sm_80", 255, 0, 256, 40, 24),
        }));
        Assert.That(kernels[0].Spills, Is.False);
        Assert.That(kernels[1].Spills, Is.True);
    }

    [Test]
    public void A_log_without_a_report_gives_nothing() => Assert.That(PtxasReport.Parse(""), Is.Empty);
}
