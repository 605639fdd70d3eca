using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

internal static partial class Interop
{
    /// <summary>
    /// The CUDA driver API entry points NativeReft uses, no more (cuda.h). Entry points that cuda.h renames with
    /// a #define (cuMemAlloc -> cuMemAlloc_v2, cuGraphInstantiate -> cuGraphInstantiateWithFlags, ...) are bound
    /// to the exported symbol the header selects, under the name the header documents.
    /// </summary>
    internal static unsafe partial class CudaDriver
    {
        static CudaDriver() => _ = Libraries.Resolver;

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuInit(uint flags);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuDriverGetVersion(out int driverVersion);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuDeviceGetCount(out int count);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuDeviceGet(out int device, int ordinal);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuDeviceGetName(byte* name, int length, int device);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuDeviceGetAttribute(out int value, CuDeviceAttribute attribute, int device);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuDeviceTotalMem_v2")]
        internal static partial CuResult cuDeviceTotalMem(out nuint bytes, int device);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuDevicePrimaryCtxRetain(out nint context, int device);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
        internal static partial CuResult cuDevicePrimaryCtxRelease(int device);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuCtxSetCurrent(nint context);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuCtxSynchronize();

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemAlloc_v2")]
        internal static partial CuResult cuMemAlloc(out ulong address, nuint bytes);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemFree_v2")]
        internal static partial CuResult cuMemFree(ulong address);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemGetInfo_v2")]
        internal static partial CuResult cuMemGetInfo(out nuint free, out nuint total);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemcpyHtoD_v2")]
        internal static partial CuResult cuMemcpyHtoD(ulong destination, void* source, nuint bytes);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemcpyDtoH_v2")]
        internal static partial CuResult cuMemcpyDtoH(void* destination, ulong source, nuint bytes);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemcpyDtoD_v2")]
        internal static partial CuResult cuMemcpyDtoD(ulong destination, ulong source, nuint bytes);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemcpyHtoDAsync_v2")]
        internal static partial CuResult cuMemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemcpyDtoHAsync_v2")]
        internal static partial CuResult cuMemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemcpyDtoDAsync_v2")]
        internal static partial CuResult cuMemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, nint stream);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemsetD8_v2")]
        internal static partial CuResult cuMemsetD8(ulong destination, byte value, nuint count);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemsetD32_v2")]
        internal static partial CuResult cuMemsetD32(ulong destination, uint value, nuint count);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuMemsetD8Async(ulong destination, byte value, nuint count, nint stream);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuMemsetD32Async(ulong destination, uint value, nuint count, nint stream);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuMemAllocHost_v2")]
        internal static partial CuResult cuMemAllocHost(out nint pointer, nuint bytes);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuMemFreeHost(nint pointer);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuStreamCreate(out nint stream, uint flags);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuStreamDestroy_v2")]
        internal static partial CuResult cuStreamDestroy(nint stream);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuStreamSynchronize(nint stream);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuEventCreate(out nint cudaEvent, uint flags);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuEventRecord(nint cudaEvent, nint stream);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuEventSynchronize(nint cudaEvent);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuEventElapsedTime(out float milliseconds, nint start, nint end);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuEventDestroy_v2")]
        internal static partial CuResult cuEventDestroy(nint cudaEvent);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuModuleLoadData(out nint module, void* image);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuModuleUnload(nint module);

        [LibraryImport(Libraries.CudaDriver, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial CuResult cuModuleGetFunction(out nint function, nint module, string name);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuFuncGetAttribute(out int value, CuFunctionAttribute attribute, nint function);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuFuncSetAttribute(nint function, CuFunctionAttribute attribute, int value);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuLaunchKernel(nint function,
            uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
            uint sharedMemoryBytes, nint stream, void** kernelParameters, void** extra);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuStreamBeginCapture_v2")]
        internal static partial CuResult cuStreamBeginCapture(nint stream, CuStreamCaptureMode mode);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuStreamEndCapture(nint stream, out nint graph);

        [LibraryImport(Libraries.CudaDriver, EntryPoint = "cuGraphInstantiateWithFlags")]
        internal static partial CuResult cuGraphInstantiate(out nint graphExec, nint graph, ulong flags);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuGraphLaunch(nint graphExec, nint stream);

        /// <summary>With <paramref name="nodes"/> null, the graph's node count.</summary>
        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuGraphGetNodes(nint graph, nint nodes, out nuint count);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuGraphDestroy(nint graph);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuGraphExecDestroy(nint graphExec);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuGetErrorName(CuResult error, out byte* name);

        [LibraryImport(Libraries.CudaDriver)]
        internal static partial CuResult cuGetErrorString(CuResult error, out byte* text);

        /// <summary>Throws <see cref="CudaException"/> unless <paramref name="status"/> is CUDA_SUCCESS.</summary>
        internal static void Check(CuResult status, [CallerArgumentExpression(nameof(status))] string call = "")
        {
            if (status != CuResult.Success)
            {
                throw Error(status, call);
            }
        }

        /// <summary>The exception for a failed call, without throwing it.</summary>
        internal static CudaException Error(CuResult status, string call)
        {
            var (name, text) = Describe(status);
            return new CudaException(CudaLibrary.Driver, call, (int)status, name, text);
        }

        /// <summary>
        /// The driver's own name and text for a status when the driver is loaded (it knows codes newer than this
        /// file); otherwise this file's table, so errors read the same on a machine without a driver.
        /// </summary>
        internal static (string Name, string Text) Describe(CuResult status)
        {
            var table = ErrorTable.Describe(status);
            if (!Libraries.IsAvailable(CudaLibrary.Driver))
            {
                return table;
            }
            string? name = cuGetErrorName(status, out byte* namePointer) == CuResult.Success ? Marshal.PtrToStringUTF8((nint)namePointer) : null;
            string? text = cuGetErrorString(status, out byte* textPointer) == CuResult.Success ? Marshal.PtrToStringUTF8((nint)textPointer) : null;
            return (name ?? table.Name, text ?? table.Text);
        }
    }

    /// <summary>CUresult (cuda.h): the codes NativeReft names; any other value passes through as a number.</summary>
    internal enum CuResult
    {
        Success = 0,
        InvalidValue = 1,
        OutOfMemory = 2,
        NotInitialized = 3,
        Deinitialized = 4,
        StubLibrary = 34,
        NoDevice = 100,
        InvalidDevice = 101,
        InvalidImage = 200,
        InvalidContext = 201,
        NoBinaryForGpu = 209,
        InvalidPtx = 218,
        UnsupportedPtxVersion = 222,
        InvalidSource = 300,
        FileNotFound = 301,
        InvalidHandle = 400,
        NotFound = 500,
        NotReady = 600,
        IllegalAddress = 700,
        LaunchOutOfResources = 701,
        LaunchTimeout = 702,
        LaunchFailed = 719,
        NotPermitted = 800,
        NotSupported = 801,
        StreamCaptureUnsupported = 900,
        StreamCaptureInvalidated = 901,
        StreamCaptureWrongThread = 908,
        Unknown = 999,
    }

    /// <summary>CUdevice_attribute (cuda.h), the ones doctor and the launchers read.</summary>
    internal enum CuDeviceAttribute
    {
        MaxThreadsPerBlock = 1,
        MaxSharedMemoryPerBlock = 8,
        WarpSize = 10,
        MultiprocessorCount = 16,
        L2CacheSize = 38,
        ComputeCapabilityMajor = 75,
        ComputeCapabilityMinor = 76,
        MaxSharedMemoryPerBlockOptin = 97,
    }

    /// <summary>CUfunction_attribute (cuda.h).</summary>
    internal enum CuFunctionAttribute
    {
        MaxThreadsPerBlock = 0,
        SharedSizeBytes = 1,
        ConstSizeBytes = 2,
        LocalSizeBytes = 3,
        NumRegs = 4,
        PtxVersion = 5,
        BinaryVersion = 6,
        MaxDynamicSharedSizeBytes = 8,
    }

    /// <summary>CUstreamCaptureMode (cuda.h).</summary>
    internal enum CuStreamCaptureMode
    {
        Global = 0,
        ThreadLocal = 1,
        Relaxed = 2,
    }

    /// <summary>CUstream_flags and CUevent_flags values (cuda.h).</summary>
    internal static class CuFlags
    {
        public const uint StreamDefault = 0x0;
        public const uint StreamNonBlocking = 0x1;
        public const uint EventDefault = 0x0;
        public const uint EventDisableTiming = 0x2;
    }

    /// <summary>Names and texts of the statuses NativeReft meets, for machines where no library can say them.</summary>
    internal static partial class ErrorTable
    {
        private static readonly Dictionary<CuResult, (string Name, string Text)> Driver = new()
        {
            [CuResult.Success] = ("CUDA_SUCCESS", "no error"),
            [CuResult.InvalidValue] = ("CUDA_ERROR_INVALID_VALUE", "invalid argument"),
            [CuResult.OutOfMemory] = ("CUDA_ERROR_OUT_OF_MEMORY", "out of memory"),
            [CuResult.NotInitialized] = ("CUDA_ERROR_NOT_INITIALIZED", "initialization error"),
            [CuResult.Deinitialized] = ("CUDA_ERROR_DEINITIALIZED", "driver shutting down"),
            [CuResult.StubLibrary] = ("CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"),
            [CuResult.NoDevice] = ("CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"),
            [CuResult.InvalidDevice] = ("CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"),
            [CuResult.InvalidImage] = ("CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"),
            [CuResult.InvalidContext] = ("CUDA_ERROR_INVALID_CONTEXT", "invalid device context"),
            [CuResult.NoBinaryForGpu] = ("CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"),
            [CuResult.InvalidPtx] = ("CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"),
            [CuResult.UnsupportedPtxVersion] = ("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"),
            [CuResult.InvalidSource] = ("CUDA_ERROR_INVALID_SOURCE", "device kernel image is invalid"),
            [CuResult.FileNotFound] = ("CUDA_ERROR_FILE_NOT_FOUND", "file not found"),
            [CuResult.InvalidHandle] = ("CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"),
            [CuResult.NotFound] = ("CUDA_ERROR_NOT_FOUND", "named symbol not found"),
            [CuResult.NotReady] = ("CUDA_ERROR_NOT_READY", "device not ready"),
            [CuResult.IllegalAddress] = ("CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"),
            [CuResult.LaunchOutOfResources] = ("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"),
            [CuResult.LaunchTimeout] = ("CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"),
            [CuResult.LaunchFailed] = ("CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"),
            [CuResult.NotPermitted] = ("CUDA_ERROR_NOT_PERMITTED", "operation not permitted"),
            [CuResult.NotSupported] = ("CUDA_ERROR_NOT_SUPPORTED", "operation not supported"),
            [CuResult.StreamCaptureUnsupported] = ("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"),
            [CuResult.StreamCaptureInvalidated] = ("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"),
            [CuResult.StreamCaptureWrongThread] = ("CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", "attempt to terminate a thread-local capture sequence from another thread"),
            [CuResult.Unknown] = ("CUDA_ERROR_UNKNOWN", "unknown error"),
        };

        public static (string Name, string Text) Describe(CuResult status) =>
            Driver.TryGetValue(status, out var entry) ? entry : ($"CUresult {(int)status}", "not a status this build knows; see cuda.h");
    }
}
