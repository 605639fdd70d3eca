using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// What every kernel parity suite shares: one launcher and one stream per fixture on a runtime the concrete
/// fixture names (a GPU or the emulator), created once and released after the last test.
/// </summary>
/// <typeparam name="TKernels">The launcher class of the kernel file under test.</typeparam>
public abstract class KernelSuite<TKernels>
    where TKernels : class, IDisposable
{
    private TKernels? kernels;
    private DeviceStream? stream;

    /// <summary>The launcher under test.</summary>
    protected TKernels Kernels => kernels!;

    /// <summary>The stream every launch of the suite goes to.</summary>
    protected DeviceStream Stream => stream!;

    /// <summary>
    /// The shared runtime the suite runs on (owned by Gpu or Emulated, not by this fixture), or Assert.Ignore/Fail
    /// with the reason there is none.
    /// </summary>
    protected abstract IDeviceRuntime Device { get; }

    /// <summary>Loads the launcher's kernels on <paramref name="device"/>.</summary>
    private protected abstract TKernels CreateKernels(IDeviceRuntime device);

    [OneTimeSetUp]
    public void LoadKernels()
    {
        kernels = CreateKernels(Device);
        stream = Device.CreateStream();
    }

    [OneTimeTearDown]
    public void UnloadKernels()
    {
        stream?.Dispose();
        kernels?.Dispose();
    }
}
