using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

/// <summary>Every status of every library becomes an exception naming the call, the error and its text.</summary>
public sealed class ErrorMappingTests
{
    private static Interop.CuResult DriverCall(Interop.CuResult result) => result;

    private static Interop.NvrtcResult NvrtcCall(Interop.NvrtcResult result) => result;

    private static Interop.CublasStatus CublasCall(Interop.CublasStatus status) => status;

    [Test]
    public void Success_does_not_throw()
    {
        Assert.DoesNotThrow(() => Interop.CudaDriver.Check(DriverCall(Interop.CuResult.Success)));
        Assert.DoesNotThrow(() => Interop.Nvrtc.Check(NvrtcCall(Interop.NvrtcResult.Success)));
        Assert.DoesNotThrow(() => Interop.Cublas.Check(CublasCall(Interop.CublasStatus.Success)));
    }

    [Test]
    public void A_driver_error_names_the_call_the_error_and_its_text()
    {
        var e = Assert.Throws<CudaException>(() => Interop.CudaDriver.Check(DriverCall(Interop.CuResult.IllegalAddress)))!;
        Assert.That(e.Library, Is.EqualTo(CudaLibrary.Driver));
        Assert.That(e.Call, Is.EqualTo("DriverCall(Interop.CuResult.IllegalAddress)"), "the call as written, via CallerArgumentExpression");
        Assert.That(e.Status, Is.EqualTo(700));
        Assert.That(e.ErrorName, Is.EqualTo("CUDA_ERROR_ILLEGAL_ADDRESS"));
        Assert.That(e.ErrorText, Does.Contain("illegal memory access"));
        Assert.That(e.Message, Is.EqualTo("CUDA driver call DriverCall(Interop.CuResult.IllegalAddress) failed: CUDA_ERROR_ILLEGAL_ADDRESS (700): " + e.ErrorText));
    }

    [TestCase((int)Interop.CuResult.OutOfMemory, "CUDA_ERROR_OUT_OF_MEMORY")]
    [TestCase((int)Interop.CuResult.NoDevice, "CUDA_ERROR_NO_DEVICE")]
    [TestCase((int)Interop.CuResult.NoBinaryForGpu, "CUDA_ERROR_NO_BINARY_FOR_GPU")]
    [TestCase((int)Interop.CuResult.LaunchOutOfResources, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES")]
    [TestCase((int)Interop.CuResult.StreamCaptureInvalidated, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED")]
    public void Driver_statuses_map_to_their_cuda_h_names(int status, string name)
    {
        var (actual, text) = Interop.CudaDriver.Describe((Interop.CuResult)status);
        Assert.That(actual, Is.EqualTo(name));
        Assert.That(text, Is.Not.Empty);
    }

    [Test]
    public void An_unknown_driver_status_still_reads_as_a_number()
    {
        var e = Assert.Throws<CudaException>(() => Interop.CudaDriver.Check(DriverCall((Interop.CuResult)12345)))!;
        Assert.That(e.Status, Is.EqualTo(12345));
        Assert.That(e.Message, Does.Contain("12345"));
    }

    [Test]
    public void An_nvrtc_error_carries_the_program_log()
    {
        const string log = "elementwise.cu(3): error: identifier \"x\" is undefined";
        var e = Interop.Nvrtc.Error(NvrtcCall(Interop.NvrtcResult.Compilation), "nvrtcCompileProgram(elementwise.cu, --gpu-architecture=sm_90)", log);
        Assert.That(e.Library, Is.EqualTo(CudaLibrary.Nvrtc));
        Assert.That(e.ErrorName, Is.EqualTo("NVRTC_ERROR_COMPILATION"));
        Assert.That(e.Log, Is.EqualTo(log));
        Assert.That(e.Message, Does.StartWith("NVRTC call nvrtcCompileProgram(elementwise.cu, --gpu-architecture=sm_90) failed: NVRTC_ERROR_COMPILATION (6)"));
        Assert.That(e.Message, Does.EndWith(log));
    }

    [TestCase((int)Interop.NvrtcResult.InvalidOption, "NVRTC_ERROR_INVALID_OPTION")]
    [TestCase((int)Interop.NvrtcResult.BuiltinOperationFailure, "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE")]
    public void Nvrtc_statuses_map_to_their_nvrtc_h_names(int status, string name) =>
        Assert.That(Interop.Nvrtc.Describe((Interop.NvrtcResult)status), Is.EqualTo(name));

    [TestCase((int)Interop.CublasStatus.NotInitialized, "CUBLAS_STATUS_NOT_INITIALIZED")]
    [TestCase((int)Interop.CublasStatus.InvalidValue, "CUBLAS_STATUS_INVALID_VALUE")]
    [TestCase((int)Interop.CublasStatus.ArchMismatch, "CUBLAS_STATUS_ARCH_MISMATCH")]
    [TestCase((int)Interop.CublasStatus.ExecutionFailed, "CUBLAS_STATUS_EXECUTION_FAILED")]
    [TestCase((int)Interop.CublasStatus.NotSupported, "CUBLAS_STATUS_NOT_SUPPORTED")]
    public void Cublas_statuses_map_to_their_cublas_api_h_names(int status, string name)
    {
        var e = Assert.Throws<CudaException>(() => Interop.Cublas.Check(CublasCall((Interop.CublasStatus)status)))!;
        Assert.That(e.Library, Is.EqualTo(CudaLibrary.Cublas));
        Assert.That(e.ErrorName, Is.EqualTo(name));
        Assert.That(e.Status, Is.EqualTo(status));
        Assert.That(e.Message, Does.Contain("CublasCall((Interop.CublasStatus)status)"));
    }

    [Test]
    public void CublasLt_errors_say_cublasLt()
    {
        var e = Assert.Throws<CudaException>(() => Interop.CublasLt.Check(CublasCall(Interop.CublasStatus.NotSupported)))!;
        Assert.That(e.Library, Is.EqualTo(CudaLibrary.CublasLt));
        Assert.That(e.Message, Does.StartWith("cuBLASLt call"));
    }

    [Test]
    public void Out_of_memory_says_how_much_was_asked_for_and_how_much_is_free()
    {
        var e = new DeviceOutOfMemoryException("cuMemAlloc(3221225472 bytes)", 2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory",
            requestedBytes: 3L << 30, freeBytes: 512L << 20, totalBytes: 80L << 30);
        Assert.That(e.Message, Does.StartWith("out of GPU memory: requested 3.00 GiB (3221225472 bytes), 512.00 MiB (536870912 bytes) free of 80.00 GiB"));
        Assert.That(e.RequestedBytes, Is.EqualTo(3L << 30));
        Assert.That(e.FreeBytes, Is.EqualTo(512L << 20));
        Assert.That(e, Is.InstanceOf<CudaException>());
    }

    [Test]
    public void A_kernel_that_does_not_compile_fails_with_nvrtcs_log()
    {
        CudaTestSupport.RequireNvrtc();
        var broken = new KernelSource("broken.cu", "#include \"common.cuh\"\nextern \"C\" __global__ void broken_forward(float* out) { out[0] = undefined_name; }\n", KernelSources.Headers);
        var e = Assert.Throws<CudaException>(() => new NvrtcCompiler().Compile(broken, new KernelCompileOptions("sm_80")))!;
        Assert.That(e.Library, Is.EqualTo(CudaLibrary.Nvrtc));
        Assert.That(e.ErrorName, Is.EqualTo("NVRTC_ERROR_COMPILATION"));
        Assert.That(e.Log, Does.Contain("broken.cu(2)").And.Contain("undefined_name"));
        Assert.That(e.Message, Does.Contain("nvrtcCompileProgram(broken.cu, --gpu-architecture=sm_80").And.Contain("undefined_name"));
    }
}
