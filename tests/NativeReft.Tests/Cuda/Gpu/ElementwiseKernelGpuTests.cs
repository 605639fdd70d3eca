using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda.Gpu;

/// <summary>kernels/elementwise.cu on the GPU (the suite), and the device's resource report against ptxas's.</summary>
[Category("Gpu")]
public sealed class ElementwiseKernelGpuTests : ElementwiseKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;

    [Test]
    public void The_device_reports_what_ptxas_reported()
    {
        foreach (var kernel in Kernels.Module.Image.Resources)
        {
            var attributes = Gpu.Runtime.GetAttributes(Kernels.Module.GetFunction(kernel.Kernel));
            Assert.That(attributes.Registers, Is.EqualTo(kernel.Registers), kernel.Kernel);
            Assert.That(attributes.StaticSharedBytes, Is.EqualTo(kernel.SharedBytes), kernel.Kernel);
        }
    }
}
