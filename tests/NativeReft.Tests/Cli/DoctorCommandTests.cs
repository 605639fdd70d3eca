using NativeReft.Tests.Cuda;

namespace NativeReft.Tests.Cli;

public sealed class DoctorCommandTests
{
    [Test]
    public void Doctor_reports_the_libraries_and_compiles_every_kernel()
    {
        CudaTestSupport.RequireNvrtc();
        var (code, output, error) = CliRunner.Run("doctor");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain("CUDA driver").And.Contain("NVRTC").And.Contain("cuBLAS"));
        Assert.That(output, Does.Contain("Kernel emulator").And.Contain("available: emulator ("));
        foreach (string kernel in (string[])["fill_forward", "axpy_forward", "add_forward", "cast_f32_to_bf16_forward", "cast_bf16_to_f32_forward", "rowsumsq_forward", "rowsumsq_f32_forward"])
        {
            Assert.That(output, Does.Contain(kernel));
        }
        Assert.That(output, Does.Contain("0 failed, 0 warnings, 0 with spills"));
    }

    [Test]
    public void Doctor_compiles_for_the_architecture_asked_for()
    {
        CudaTestSupport.RequireNvrtc();
        var (code, output, error) = CliRunner.Run("doctor", "--arch", "sm_80");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain("kernels for sm_80"));
    }

    [Test]
    public void A_bad_architecture_is_one_line_and_exit_code_1()
    {
        var (code, _, error) = CliRunner.Run("doctor", "--arch", "hopper");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error.Trim(), Does.StartWith("error: --arch: 'hopper' is not a CUDA architecture"));
    }
}
