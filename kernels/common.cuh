/*
Shared helpers for every kernel file: integer types, bf16 storage and conversion, 128-bit vector loads and
stores, warp and block reductions, and 64-bit indexing.

No system headers, no inline PTX: NVRTC compiles these files as they are, and the CPU emulator compiles the
same files with g++ against an emulation header that supplies the CUDA built-ins used here (blockIdx,
threadIdx, blockDim, gridDim, __syncthreads, __shfl_xor_sync, __float_as_uint, __uint_as_float; see
cmake/emulator/cuda_emulation.h). Dynamic shared memory is reached through dynamic_shared<T>() below, never by
declaring `extern __shared__ T name[]` in a kernel: the emulator supplies its own dynamic_shared<T>().

Numerics: bf16 is storage only. Every kernel widens to fp32, computes and accumulates in fp32, and rounds back
to bf16 (round to nearest even) when it stores, as HF LLaMA does in bf16 mode.
*/
#pragma once

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;

// The block's dynamic shared memory (the launch's shared-bytes argument), 16-byte aligned.
#ifndef NATIVEREFT_EMULATOR
template <typename T>
__device__ __forceinline__ T* dynamic_shared() {
    extern __shared__ __align__(16) unsigned char dynamic_shared_bytes[];
    return reinterpret_cast<T*>(dynamic_shared_bytes);
}
#endif

// Unrolls the loop that follows (register arrays indexed by the loop variable must be unrolled to stay in
// registers). Nothing on the emulator, where g++ would warn about the unknown pragma.
#ifdef NATIVEREFT_EMULATOR
#define UNROLL
#else
#define UNROLL _Pragma("unroll")
#endif

// bfloat16: the top 16 bits of an IEEE float. A struct, not an alias of u16, so that overloads and templates
// can tell a bf16 from an integer.
struct bf16 {
    u16 bits;
};

__device__ __forceinline__ float bf16_to_float(bf16 x) {
    return __uint_as_float(((u32)x.bits) << 16);
}

// Round to nearest, ties to even; NaN stays a (quiet) NaN. Same rule as DTypes.FloatToBF16 on the host.
__device__ __forceinline__ bf16 float_to_bf16(float f) {
    u32 u = __float_as_uint(f);
    bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.bits = (u16)((u >> 16) | 0x40u);
        return r;
    }
    u32 rounding_bias = 0x7fffu + ((u >> 16) & 1u);
    r.bits = (u16)((u + rounding_bias) >> 16);
    return r;
}

// Overloads so templated kernels read and write float and bf16 alike.
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return bf16_to_float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) { return float_to_bf16(x); }

// ----------------------------------------------------------------------------------------------------------
// 64-bit indexing: tensors of more than 2^31 elements are routine (a 128k vocabulary times 32k tokens), so
// flattened offsets are i64 everywhere. A grid-stride loop covers any n with any grid.

__device__ __forceinline__ i64 global_thread_index() {
    return (i64)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ i64 grid_stride() {
    return (i64)gridDim.x * blockDim.x;
}

// ----------------------------------------------------------------------------------------------------------
// Vector loads and stores (llm.c's Packed128, any width): Pack<T, W> is W consecutive elements accessed as one;
// W * sizeof(T) = 16 is one ld.global.v4 / st.global.v4 (8 bf16 or 4 floats), W = 1 a plain scalar access, so a
// kernel written once for W runs its body 128 bits at a time and its tail element by element. The address must be
// aligned to the pack (alignof(Pack<T, W>)); kernels take the wide path only when every pointer is (aligned16).

template <typename T, int W>
struct alignas(W * sizeof(T)) Pack {
    static constexpr int size = W;
    T payload[W];
    __device__ __forceinline__ T& operator[](int i) { return payload[i]; }
    __device__ __forceinline__ const T& operator[](int i) const { return payload[i]; }
};

template <typename T>
using Packed128 = Pack<T, 16 / sizeof(T)>;

template <int W, typename T>
__device__ __forceinline__ Pack<T, W> load_pack(const T* address) {
#ifdef NATIVEREFT_EMULATOR
    if (!emu::aligned(address, alignof(Pack<T, W>), "a Pack load")) {
        return Pack<T, W>{};
    }
#endif
    return *reinterpret_cast<const Pack<T, W>*>(address);
}

template <int W, typename T>
__device__ __forceinline__ void store_pack(T* address, const Pack<T, W>& value) {
#ifdef NATIVEREFT_EMULATOR
    if (!emu::aligned(address, alignof(Pack<T, W>), "a Pack store")) {
        return;
    }
#endif
    *reinterpret_cast<Pack<T, W>*>(address) = value;
}

template <typename T>
__device__ __forceinline__ Packed128<T> load128(const T* address) {
    return load_pack<Packed128<T>::size>(address);
}

template <typename T>
__device__ __forceinline__ void store128(T* address, Packed128<T> value) {
    store_pack<Packed128<T>::size>(address, value);
}

// Whether every pointer is 16-byte aligned (null counts as aligned).
template <typename... P>
__device__ __forceinline__ bool aligned16(const P*... pointers) {
    return ((((u64)pointers) | ... | 0ull) & 15ull) == 0;
}

// bf16 elements per 128-bit access.
#define BF16_PACK 8

// out[i] = bf16(op(float(a[i]), float(b[i]))) over [begin, end), W at a time (end - begin a multiple of W).
template <int W, typename Op>
__device__ __forceinline__ void map2_span(bf16* out, const bf16* a, const bf16* b, i64 begin, i64 end, Op op) {
    for (i64 i = begin + global_thread_index() * W; i < end; i += grid_stride() * W) {
        const Pack<bf16, W> x = load_pack<W>(a + i);
        const Pack<bf16, W> y = load_pack<W>(b + i);
        Pack<bf16, W> z;
        for (int k = 0; k < W; k++) {
            z[k] = float_to_bf16(op(bf16_to_float(x[k]), bf16_to_float(y[k])));
        }
        store_pack<W>(out + i, z);
    }
}

// The same over [0, n): 128 bits at a time when the three tensors are 16-byte aligned, then the tail (n % 8) one
// element at a time; a grid of n / 8 threads covers it. out may alias a or b (each element is read, then written,
// by one thread).
template <typename Op>
__device__ __forceinline__ void map2(bf16* out, const bf16* a, const bf16* b, i64 n, Op op) {
    const i64 packed = aligned16(out, a, b) ? n / BF16_PACK * BF16_PACK : 0;
    map2_span<BF16_PACK>(out, a, b, 0, packed, op);
    map2_span<1>(out, a, b, packed, n, op);
}

// ----------------------------------------------------------------------------------------------------------
// Reductions. warp_reduce_sum leaves the sum in every lane (butterfly); block_reduce_sum returns the block's
// sum to every thread. blockDim.x must be a multiple of 32 and at most 1024.

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float warp_reduce_sum(float v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    return v;
}

__device__ __forceinline__ float warp_reduce_max(float v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    }
    return v;
}

// Two calls in a row are safe: the leading __syncthreads keeps a second call from overwriting partial sums
// that slower warps of the first call still read.
__device__ __forceinline__ float block_reduce_sum(float v) {
    __shared__ float partial[WARP_SIZE];
    const int lane = threadIdx.x % WARP_SIZE;
    const int warp = threadIdx.x / WARP_SIZE;
    const int warps = blockDim.x / WARP_SIZE;
    v = warp_reduce_sum(v);
    __syncthreads();
    if (lane == 0) {
        partial[warp] = v;
    }
    __syncthreads();
    v = lane < warps ? partial[lane] : 0.0f;
    return warp_reduce_sum(v);
}
