namespace NativeReft.Cuda;

/// <summary>Whether one NVIDIA library is installed, and which version.</summary>
/// <param name="Library">The library.</param>
/// <param name="Version">Its version, when found.</param>
/// <param name="LoadedFrom">The file that was loaded, when found.</param>
/// <param name="Problem">Why it cannot be used, with what to install; null when it can.</param>
public sealed record LibraryStatus(CudaLibrary Library, string? Version, string? LoadedFrom, string? Problem)
{
    /// <summary>Whether the library is usable.</summary>
    public bool Found => Problem is null;

    /// <summary>The library's name for people, e.g. "CUDA driver".</summary>
    public string Name => Interop.Libraries.DisplayName(Library);
}

/// <summary>What CUDA this machine has: the libraries and the GPUs (what <c>nativereft doctor</c> prints).</summary>
/// <param name="Driver">The CUDA driver.</param>
/// <param name="Nvrtc">NVRTC.</param>
/// <param name="Cublas">cuBLAS.</param>
/// <param name="CublasLt">cuBLASLt.</param>
/// <param name="Devices">The GPUs the driver sees (none without a driver).</param>
/// <param name="DeviceProblem">Why no GPU is usable, when none is.</param>
public sealed record CudaSystemReport(LibraryStatus Driver, LibraryStatus Nvrtc, LibraryStatus Cublas, LibraryStatus CublasLt,
    IReadOnlyList<DeviceProperties> Devices, string? DeviceProblem);

/// <summary>Probes the CUDA libraries and devices without creating a context; never throws for a missing piece.</summary>
public static class CudaSystem
{
    /// <summary>Loads each library it can and asks its version; lists the GPUs when the driver is there.</summary>
    public static CudaSystemReport Probe()
    {
        var devices = (IReadOnlyList<DeviceProperties>)[];
        string? deviceProblem = null;
        var driver = Status(CudaLibrary.Driver, () =>
        {
            try
            {
                var (version, found) = CudaRuntime.QueryDevices();
                devices = found;
                deviceProblem = found.Count == 0 ? "the driver reports no CUDA device" : null;
                return $"{version / 1000}.{version % 1000 / 10}";
            }
            catch (CudaException e)
            {
                deviceProblem = $"no usable GPU: {e.ErrorName} ({e.ErrorText})";
                return Interop.CudaDriver.cuDriverGetVersion(out int version) == Interop.CuResult.Success
                    ? $"{version / 1000}.{version % 1000 / 10}"
                    : "unknown";
            }
        });
        if (!driver.Found)
        {
            deviceProblem = "no CUDA driver, so no GPU";
        }
        var nvrtc = Status(CudaLibrary.Nvrtc, () =>
        {
            var compiler = new NvrtcCompiler();
            return $"{compiler.Major}.{compiler.Minor} (sm_{compiler.SupportedArchitectures[0]} to sm_{compiler.SupportedArchitectures[^1]})";
        });
        var cublas = Status(CudaLibrary.Cublas, () => Blas.QueryVersion() ?? "unknown");
        var cublasLt = Status(CudaLibrary.CublasLt, () =>
        {
            long version = BlasLt.QueryVersion() ?? 0;
            return $"{version / 10000}.{version / 100 % 100}.{version % 100}";
        });
        return new CudaSystemReport(driver, nvrtc, cublas, cublasLt, devices, deviceProblem);
    }

    private static LibraryStatus Status(CudaLibrary library, Func<string> version)
    {
        var resolution = Interop.Libraries.Resolver.Resolve(library);
        if (!resolution.Found)
        {
            return new LibraryStatus(library, null, null, $"not found: {Interop.Libraries.InstallHint(library)}");
        }
        try
        {
            return new LibraryStatus(library, version(), resolution.LoadedFrom, null);
        }
        catch (Exception e) when (e is CudaException or EntryPointNotFoundException)
        {
            return new LibraryStatus(library, null, resolution.LoadedFrom, $"found but unusable: {e.Message}");
        }
    }
}
