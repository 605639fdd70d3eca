namespace NativeReft.Cuda;

/// <summary>
/// A CUDA driver, NVRTC or cuBLAS call that returned an error status. The message names the call (as written in
/// the source), the library's name for the error and its text; a failed NVRTC compile also carries the program
/// log. Every status of every library passes through one Check per library, so nothing is silently ignored.
/// </summary>
public class CudaException : Exception
{
    /// <summary>Creates the exception for a failed call.</summary>
    public CudaException(CudaLibrary library, string call, int status, string errorName, string errorText, string? log = null)
        : this(library, call, status, errorName, errorText, Format(library, call, status, errorName, errorText, log), log)
    {
    }

    /// <summary>Creates the exception with a message of its own (for subclasses that add facts).</summary>
    protected CudaException(CudaLibrary library, string call, int status, string errorName, string errorText, string message, string? log)
        : base(message)
    {
        Library = library;
        Call = call;
        Status = status;
        ErrorName = errorName;
        ErrorText = errorText;
        Log = log;
    }

    /// <summary>The library whose call failed.</summary>
    public CudaLibrary Library { get; }

    /// <summary>The call as written in the source, e.g. <c>cuMemAlloc(out address, (nuint)bytes)</c>.</summary>
    public string Call { get; }

    /// <summary>The raw status code (CUresult, nvrtcResult or cublasStatus_t).</summary>
    public int Status { get; }

    /// <summary>The library's name for the status, e.g. CUDA_ERROR_OUT_OF_MEMORY.</summary>
    public string ErrorName { get; }

    /// <summary>The library's description of the status.</summary>
    public string ErrorText { get; }

    /// <summary>The NVRTC program log of a failed compile; null otherwise.</summary>
    public string? Log { get; }

    private static string Format(CudaLibrary library, string call, int status, string errorName, string errorText, string? log)
    {
        string message = $"{Interop.Libraries.DisplayName(library)} call {call} failed: {errorName} ({status}): {errorText}";
        return string.IsNullOrWhiteSpace(log) ? message : message + Environment.NewLine + log.TrimEnd();
    }
}

/// <summary>The GPU has too little free memory for an allocation, even after the pool released its cache.</summary>
public sealed class DeviceOutOfMemoryException : CudaException
{
    /// <summary>Creates the exception for a request of <paramref name="requestedBytes"/>.</summary>
    public DeviceOutOfMemoryException(string call, int status, string errorName, string errorText, long requestedBytes, long freeBytes, long totalBytes)
        : base(CudaLibrary.Driver, call, status, errorName, errorText,
            $"out of GPU memory: requested {Bytes(requestedBytes)}, {Bytes(freeBytes)} free of {Bytes(totalBytes)} ({call} returned {errorName})", null)
    {
        RequestedBytes = requestedBytes;
        FreeBytes = freeBytes;
        TotalBytes = totalBytes;
    }

    /// <summary>The size of the allocation that failed.</summary>
    public long RequestedBytes { get; }

    /// <summary>Free device memory when it failed.</summary>
    public long FreeBytes { get; }

    /// <summary>The device's total memory.</summary>
    public long TotalBytes { get; }

    internal static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB ({bytes} bytes)",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F2} MiB ({bytes} bytes)",
        _ => $"{bytes} bytes",
    };
}

/// <summary>A CUDA library is not installed: the message lists the files tried and what to install.</summary>
public sealed class CudaLibraryNotFoundException : Exception
{
    /// <summary>Creates the exception for <paramref name="library"/>, listing the paths tried.</summary>
    public CudaLibraryNotFoundException(CudaLibrary library, IReadOnlyList<string> tried)
        : base($"{Interop.Libraries.DisplayName(library)} not found (tried {string.Join(", ", tried)}): {Interop.Libraries.InstallHint(library)}")
    {
        Library = library;
        Tried = tried;
    }

    /// <summary>The missing library.</summary>
    public CudaLibrary Library { get; }

    /// <summary>The paths that were tried.</summary>
    public IReadOnlyList<string> Tried { get; }
}
