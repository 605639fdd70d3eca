namespace NativeReft.Cuda;

/// <summary>
/// A device address: a CUdeviceptr on a GPU, a host address on the emulator. Eight bytes, so it is passed to a
/// kernel exactly as the kernel's <c>T*</c> parameter.
/// </summary>
/// <param name="Address">The address; 0 is null.</param>
public readonly record struct DevicePointer(ulong Address)
{
    /// <summary>The null pointer.</summary>
    public static DevicePointer Null => default;

    /// <summary>Whether this is the null pointer.</summary>
    public bool IsNull => Address == 0;

    /// <summary>The address <paramref name="bytes"/> further on.</summary>
    public DevicePointer Offset(long bytes) => new(checked((ulong)((long)Address + bytes)));

    /// <inheritdoc />
    public override string ToString() => $"0x{Address:x}";
}

/// <summary>Free and total device memory, in bytes.</summary>
/// <param name="FreeBytes">Memory not in use by anyone (this process's pool cache counts as used).</param>
/// <param name="TotalBytes">The device's memory.</param>
public readonly record struct DeviceMemoryInfo(long FreeBytes, long TotalBytes);
