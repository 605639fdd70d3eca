namespace NativeReft.Cuda;

/// <summary>The NVIDIA libraries NativeReft loads at run time. None is needed to build or to run on the CPU.</summary>
public enum CudaLibrary
{
    /// <summary>The CUDA driver API (libcuda.so.1), installed with the NVIDIA driver.</summary>
    Driver,

    /// <summary>NVRTC, the runtime CUDA C++ compiler (libnvrtc.so.*): compiles kernels/*.cu, GPU or not.</summary>
    Nvrtc,

    /// <summary>cuBLAS (libcublas.so.*): GEMMs.</summary>
    Cublas,

    /// <summary>cuBLASLt (libcublasLt.so.*): GEMMs with fused epilogues.</summary>
    CublasLt,
}
