// The CUDA built-ins that kernels/*.cu use, for g++: the CPU kernel emulator compiles every kernel file as C++ with
// this header force-included (-include cuda_emulation.h), so the kernel sources stay exactly what NVRTC compiles.
//
// Execution model (emulator.cpp does the work):
//   - A launch spreads its blocks over a small pool of OS threads. One block runs entirely on one OS thread.
//   - The threads of a block are fibers on that OS thread (a hand-rolled context switch on x86-64, ucontext
//     elsewhere). The scheduler runs each thread until it blocks (at __syncthreads, a warp collective, or its end),
//     in thread order, so a missing barrier shows up deterministically: thread 0 runs past the point where it
//     should have waited and reads what threads 1.. have not written yet.
//   - threadIdx is the running fiber's; blockIdx, blockDim, gridDim are the OS thread's (its current block).
//   - Static __shared__ variables are `static thread_local`: every fiber of a block shares its OS thread's copy,
//     and blocks on one OS thread run one after another, so each block sees its own shared memory (uninitialized,
//     as on a GPU). Dynamic shared memory is a per-block arena, reached through dynamic_shared<T>() (common.cuh
//     declares the NVRTC side), because `extern __shared__ T name[];` has no C++ spelling that works here.
//   - Warp shuffles and votes are collectives: each lane of the mask deposits its value and blocks; the last lane
//     to arrive computes every lane's result and releases them, so lanes move in lock-step as on a GPU.
//   - Atomics are C++ atomics on the same memory (relaxed, as CUDA's are).
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#define NATIVEREFT_EMULATOR 1

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__ static thread_local

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
};

namespace emu {

// What the running fiber and its block look like; set by the scheduler before a fiber runs.
struct ThreadState {
    uint3 thread_idx;
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
    unsigned char* dynamic_shared;
};

// initial-exec: every threadIdx/blockIdx read in a kernel would otherwise call __tls_get_addr (a tenth of the
// emulator's time). The 56 bytes fit glibc's static TLS surplus for a dlopen'ed library.
extern thread_local ThreadState current __attribute__((tls_model("initial-exec")));

void syncthreads(const char* file, int line);

// A GPU stops a kernel at a vector access not aligned to its size ("misaligned address"), where x86 carries on:
// aligned() reports such an access as the launch's error (naming the kernel, block and thread) and returns false,
// and the caller then skips it.
void misaligned(const void* address, int alignment, const char* access);
inline bool aligned(const void* address, std::size_t alignment, const char* access) {
    if (reinterpret_cast<std::uintptr_t>(address) % alignment == 0) {
        return true;
    }
    misaligned(address, (int)alignment, access);
    return false;
}

// Warp collectives. kind: what to compute; value: this lane's payload; argument: source lane, delta or lane
// mask; width: the shuffle's segment. Returns this lane's result.
enum class WarpOp : int { Sync, ShuffleIndex, ShuffleXor, ShuffleDown, ShuffleUp, Ballot, Any, All, MmaBf16, LoadMatrix, LoadMatrixTransposed };
std::uint64_t warp_collective(unsigned mask, WarpOp op, std::uint64_t value, int argument, int width);

template <typename T>
__forceinline__ T shuffle(unsigned mask, WarpOp op, T value, int argument, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move values of at most 8 bytes");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    bits = warp_collective(mask, op, bits, argument, width);
    T result;
    std::memcpy(&result, &bits, sizeof(T));
    return result;
}

} // namespace emu

#define threadIdx (::emu::current.thread_idx)
#define blockIdx (::emu::current.block_idx)
#define blockDim (::emu::current.block_dim)
#define gridDim (::emu::current.grid_dim)
#define warpSize 32

// A macro, so that every call site is its own barrier: threads waiting at different __syncthreads() are caught.
#define __syncthreads() ::emu::syncthreads(__FILE__, __LINE__)

template <typename T>
inline T* dynamic_shared() {
    return reinterpret_cast<T*>(::emu::current.dynamic_shared);
}

inline void __syncwarp(unsigned mask = 0xffffffffu) { ::emu::warp_collective(mask, ::emu::WarpOp::Sync, 0, 0, 32); }

template <typename T>
inline T __shfl_sync(unsigned mask, T value, int source, int width = 32) {
    return ::emu::shuffle(mask, ::emu::WarpOp::ShuffleIndex, value, source, width);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
    return ::emu::shuffle(mask, ::emu::WarpOp::ShuffleXor, value, lane_mask, width);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
    return ::emu::shuffle(mask, ::emu::WarpOp::ShuffleDown, value, (int)delta, width);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32) {
    return ::emu::shuffle(mask, ::emu::WarpOp::ShuffleUp, value, (int)delta, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
    return (unsigned)::emu::warp_collective(mask, ::emu::WarpOp::Ballot, predicate != 0, 0, 32);
}
inline int __any_sync(unsigned mask, int predicate) {
    return (int)::emu::warp_collective(mask, ::emu::WarpOp::Any, predicate != 0, 0, 32);
}
inline int __all_sync(unsigned mask, int predicate) {
    return (int)::emu::warp_collective(mask, ::emu::WarpOp::All, predicate != 0, 0, 32);
}
inline unsigned __activemask() { return 0xffffffffu; }

// The tensor-core instruction kernels/mma.cuh wraps on a GPU (mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32,
// d += a b): a collective of the whole warp. Each lane deposits the address of its fragments; the last lane to
// arrive assembles A (16x16), B (16x8) and C from every lane's registers by the PTX ISA's fragment layout,
// computes D in fp32 (each product is exact; the sum runs over k in order) and writes every lane's d.
namespace emu {
struct MmaFragments {
    float* d;
    const unsigned* a;
    const unsigned* b;
};
} // namespace emu

// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16, the same way: lanes 8i..8i+7 give the addresses of matrix i's
// eight rows (8 consecutive 16-bit elements each); lane l receives in r[i] matrix i's row l / 4, elements
// 2 (l % 4) and 2 (l % 4) + 1 (transposed: column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1).
namespace emu {
struct MatrixLoad {
    const void* row;
    unsigned* r;
};
} // namespace emu

// A collective of the whole warp whose payload is the address of this lane's operands (mma, ldmatrix).
namespace emu {
inline void warp_matrix_op(const void* operands, WarpOp op) {
    std::uint64_t address = 0;
    std::memcpy(&address, &operands, sizeof(operands));
    warp_collective(0xffffffffu, op, address, 0, 32);
}
} // namespace emu

inline void load_matrix_x4(unsigned r[4], const void* row) {
    ::emu::aligned(row, 16, "an ldmatrix row"); // reported; the collective still runs, so the warp does not stall
    const ::emu::MatrixLoad load{row, r};
    ::emu::warp_matrix_op(&load, ::emu::WarpOp::LoadMatrix);
}
inline void load_matrix_x4_transposed(unsigned r[4], const void* row) {
    ::emu::aligned(row, 16, "an ldmatrix row");
    const ::emu::MatrixLoad load{row, r};
    ::emu::warp_matrix_op(&load, ::emu::WarpOp::LoadMatrixTransposed);
}

// cp.async (kernels/ptx.cuh): a thread's copies are queued and performed only when a wait covers them, so reading
// a tile before waiting for it sees stale data, deterministically, as it may on a GPU.
namespace emu {
void async_copy(void* destination, const void* source, int bytes, int valid_bytes);
void async_commit();
void async_wait(int pending_groups);
} // namespace emu

inline void copy_async_16(void* shared_destination, const void* global_source, bool valid) {
    if (::emu::aligned(shared_destination, 16, "cp.async's 16-byte shared destination")
        && (!valid || ::emu::aligned(global_source, 16, "cp.async's 16-byte global source"))) {
        ::emu::async_copy(shared_destination, global_source, 16, valid ? 16 : 0);
    }
}
inline void copy_async_commit() { ::emu::async_commit(); }
template <int N>
inline void copy_async_wait() { ::emu::async_wait(N); }

inline void mma_bf16_16x8x16(float d[4], const unsigned a[4], const unsigned b[2]) {
    const ::emu::MmaFragments fragments{d, a, b};
    ::emu::warp_matrix_op(&fragments, ::emu::WarpOp::MmaBf16);
}

// ---------------------------------------------------------------------------------------------------------
// Memory ordering and atomics (relaxed, like CUDA's atomic* functions).

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }

template <typename T>
inline T __emu_atomic_add(T* address, T value) {
    return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}
inline float atomicAdd(float* a, float v) { return __emu_atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return __emu_atomic_add(a, v); }
inline int atomicAdd(int* a, int v) { return __emu_atomic_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return __emu_atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) { return __emu_atomic_add(a, v); }
inline int atomicSub(int* a, int v) { return std::atomic_ref<int>(*a).fetch_sub(v, std::memory_order_relaxed); }
inline unsigned atomicSub(unsigned* a, unsigned v) { return std::atomic_ref<unsigned>(*a).fetch_sub(v, std::memory_order_relaxed); }

template <typename T>
inline T atomicExch(T* address, T value) {
    return std::atomic_ref<T>(*address).exchange(value, std::memory_order_relaxed);
}

template <typename T>
inline T atomicCAS(T* address, T compare, T value) {
    std::atomic_ref<T>(*address).compare_exchange_strong(compare, value, std::memory_order_relaxed);
    return compare; // the old value, whether or not it was swapped
}

template <typename T>
inline T atomicMax(T* address, T value) {
    std::atomic_ref<T> target(*address);
    T old = target.load(std::memory_order_relaxed);
    while (old < value && !target.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
    }
    return old;
}

template <typename T>
inline T atomicMin(T* address, T value) {
    std::atomic_ref<T> target(*address);
    T old = target.load(std::memory_order_relaxed);
    while (value < old && !target.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
    }
    return old;
}

inline int atomicAnd(int* a, int v) { return std::atomic_ref<int>(*a).fetch_and(v, std::memory_order_relaxed); }
inline unsigned atomicAnd(unsigned* a, unsigned v) { return std::atomic_ref<unsigned>(*a).fetch_and(v, std::memory_order_relaxed); }
inline int atomicOr(int* a, int v) { return std::atomic_ref<int>(*a).fetch_or(v, std::memory_order_relaxed); }
inline unsigned atomicOr(unsigned* a, unsigned v) { return std::atomic_ref<unsigned>(*a).fetch_or(v, std::memory_order_relaxed); }
inline int atomicXor(int* a, int v) { return std::atomic_ref<int>(*a).fetch_xor(v, std::memory_order_relaxed); }
inline unsigned atomicXor(unsigned* a, unsigned v) { return std::atomic_ref<unsigned>(*a).fetch_xor(v, std::memory_order_relaxed); }

// ---------------------------------------------------------------------------------------------------------
// Bit casts and math intrinsics. The fast-math intrinsics (__expf, __fdividef...) are the precise functions
// here: the emulator checks logic, not the last ulp of the GPU's approximations.

inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline long long __double_as_longlong(double d) { long long l; std::memcpy(&l, &d, 8); return l; }
inline double __longlong_as_double(long long l) { double d; std::memcpy(&d, &l, 8); return d; }

inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
// The round-to-nearest arithmetic intrinsics: on a GPU they keep the compiler from contracting a * b + c into
// an FMA, for results that must equal a CPU's bit for bit. Here plain operations: g++ contracts only where the
// target has an FMA instruction, and the emulator builds for the x86-64 baseline, which has none.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }

template <typename T>
inline T __ldg(const T* address) { return *address; }

template <typename T>
inline T min(T a, T b) { return b < a ? b : a; }
template <typename T>
inline T max(T a, T b) { return a < b ? b : a; }

// ---------------------------------------------------------------------------------------------------------
// How the generated kernel tables register each `extern "C" __global__` function: the function's own type
// gives its parameter types, so the thunk that unpacks `void** args` is a template instance, not glue.

namespace emu {

using Thunk = void (*)(void** arguments);

void register_kernel(const char* name, const char* file, Thunk thunk, int parameter_count, const int* parameter_sizes);

template <typename F>
struct FunctionTraits;

template <typename... A>
struct FunctionTraits<void (*)(A...)> {
    static constexpr int count = (int)sizeof...(A);
    // A zero-parameter kernel still gets a one-element array (C++ has no empty arrays).
    static constexpr int sizes[sizeof...(A) + 1] = {(int)sizeof(A)..., 0};
};

template <auto Kernel, typename... A, std::size_t... I>
inline void invoke(void (*)(A...), void** arguments, std::index_sequence<I...>) {
    (void)arguments;
    Kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(arguments[I])...);
}

template <auto Kernel>
void thunk(void** arguments) {
    invoke<Kernel>(Kernel, arguments, std::make_index_sequence<FunctionTraits<decltype(Kernel)>::count>{});
}

template <auto Kernel>
struct Registration {
    Registration(const char* name, const char* file) {
        using Traits = FunctionTraits<decltype(Kernel)>;
        register_kernel(name, file, &thunk<Kernel>, Traits::count, Traits::sizes);
    }
};

} // namespace emu

#define NATIVEREFT_EMU_REGISTER(name, file) static ::emu::Registration<&name> nativereft_emu_registration_##name(#name, file)
