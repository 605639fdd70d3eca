namespace NativeReft.Cuda;

/// <summary>
/// Typed helpers over <see cref="IDeviceRuntime"/>: buffers, span copies, and kernel launches whose arguments
/// go into a <c>void*[]</c> on the stack (no boxing, no allocation per launch).
/// </summary>
public static unsafe class DeviceRuntimeExtensions
{
    /// <summary>A new buffer of <paramref name="length"/> elements (contents undefined).</summary>
    public static DeviceBuffer<T> Allocate<T>(this IDeviceRuntime runtime, long length)
        where T : unmanaged => new(runtime, length);

    /// <summary>A new buffer holding a copy of <paramref name="values"/> (synchronous).</summary>
    public static DeviceBuffer<T> Upload<T>(this IDeviceRuntime runtime, ReadOnlySpan<T> values)
        where T : unmanaged
    {
        var buffer = new DeviceBuffer<T>(runtime, values.Length);
        try
        {
            buffer.CopyFrom(values);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (lengths must match).</summary>
    public static void CopyToDevice<T>(this IDeviceRuntime runtime, ReadOnlySpan<T> source, DeviceView<T> destination, DeviceStream? stream = null)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        RequireSameLength(source.Length, destination.Length);
        fixed (T* host = source)
        {
            runtime.CopyHostToDevice(destination.Pointer, host, destination.SizeInBytes, stream);
        }
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (lengths must match).</summary>
    public static void CopyToHost<T>(this IDeviceRuntime runtime, DeviceView<T> source, Span<T> destination, DeviceStream? stream = null)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        RequireSameLength(destination.Length, source.Length);
        fixed (T* host = destination)
        {
            runtime.CopyDeviceToHost(host, source.Pointer, source.SizeInBytes, stream);
        }
    }

    /// <summary>Copies one device view into another of the same length.</summary>
    public static void Copy<T>(this IDeviceRuntime runtime, DeviceView<T> source, DeviceView<T> destination, DeviceStream? stream = null)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        RequireSameLength(source.Length, destination.Length);
        runtime.CopyDeviceToDevice(destination.Pointer, source.Pointer, source.SizeInBytes, stream);
    }

    /// <summary>Launches a kernel of 1 parameter; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0)
        where T0 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[1];
        arguments[0] = &a0;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 2 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1)
        where T0 : unmanaged
        where T1 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[2];
        arguments[0] = &a0;
        arguments[1] = &a1;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 3 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1, T2>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1, T2 a2)
        where T0 : unmanaged
        where T1 : unmanaged
        where T2 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[3];
        arguments[0] = &a0;
        arguments[1] = &a1;
        arguments[2] = &a2;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 4 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1, T2, T3>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1, T2 a2, T3 a3)
        where T0 : unmanaged
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[4];
        arguments[0] = &a0;
        arguments[1] = &a1;
        arguments[2] = &a2;
        arguments[3] = &a3;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 5 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1, T2, T3, T4>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4)
        where T0 : unmanaged
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[5];
        arguments[0] = &a0;
        arguments[1] = &a1;
        arguments[2] = &a2;
        arguments[3] = &a3;
        arguments[4] = &a4;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 6 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1, T2, T3, T4, T5>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)
        where T0 : unmanaged
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[6];
        arguments[0] = &a0;
        arguments[1] = &a1;
        arguments[2] = &a2;
        arguments[3] = &a3;
        arguments[4] = &a4;
        arguments[5] = &a5;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 7 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1, T2, T3, T4, T5, T6>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)
        where T0 : unmanaged
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[7];
        arguments[0] = &a0;
        arguments[1] = &a1;
        arguments[2] = &a2;
        arguments[3] = &a3;
        arguments[4] = &a4;
        arguments[5] = &a5;
        arguments[6] = &a6;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 8 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1, T2, T3, T4, T5, T6, T7>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7)
        where T0 : unmanaged
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[8];
        arguments[0] = &a0;
        arguments[1] = &a1;
        arguments[2] = &a2;
        arguments[3] = &a3;
        arguments[4] = &a4;
        arguments[5] = &a5;
        arguments[6] = &a6;
        arguments[7] = &a7;
        runtime.Launch(function, config, stream, arguments);
    }

    /// <summary>Launches a kernel of 9 parameters; each argument is passed as its unmanaged value.</summary>
    public static void Launch<T0, T1, T2, T3, T4, T5, T6, T7, T8>(this IDeviceRuntime runtime, KernelFunction function, in LaunchConfig config, DeviceStream stream, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)
        where T0 : unmanaged
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where T4 : unmanaged
        where T5 : unmanaged
        where T6 : unmanaged
        where T7 : unmanaged
        where T8 : unmanaged
    {
        ArgumentNullException.ThrowIfNull(runtime);
        void** arguments = stackalloc void*[9];
        arguments[0] = &a0;
        arguments[1] = &a1;
        arguments[2] = &a2;
        arguments[3] = &a3;
        arguments[4] = &a4;
        arguments[5] = &a5;
        arguments[6] = &a6;
        arguments[7] = &a7;
        arguments[8] = &a8;
        runtime.Launch(function, config, stream, arguments);
    }

    private static void RequireSameLength(long host, long device)
    {
        if (host != device)
        {
            throw new ArgumentException($"host span holds {host} elements, device view {device}");
        }
    }
}
