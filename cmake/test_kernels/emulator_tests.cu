/*
Test kernels for the CPU emulator itself (tests/NativeReft.Tests/Emulator), built into
libnativereft_emu_testkernels.so only: known answers for block reductions through shared memory, warp shuffles
and votes, atomics, dynamic shared memory; a reduction with a missing __syncthreads() (a race the emulator must
expose), barrier divergence, and an out-of-bounds write.
*/
#include "common.cuh"

// out[b] = sum of x over block b's 256 elements (tree reduction in static shared memory). blockDim.x == 256.
// Without the barrier between the stores and the first reads (Barrier = false) it is a race.
template <bool Barrier>
__device__ void block_sum(float* out, const float* x, int n) {
    __shared__ float partial[256];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    partial[threadIdx.x] = i < n ? x[i] : 0.0f;
    if (Barrier) {
        __syncthreads();
    }
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) {
            partial[threadIdx.x] += partial[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[blockIdx.x] = partial[0];
    }
}

extern "C" __global__ void emutest_block_sum(float* out, const float* x, int n) { block_sum<true>(out, x, n); }

extern "C" __global__ void emutest_block_sum_racy(float* out, const float* x, int n) { block_sum<false>(out, x, n); }

// common.cuh's block_reduce_sum (warp shuffles, then shared memory): out[b] = sum of block b's elements.
extern "C" __global__ void emutest_block_reduce_sum(float* out, const float* x, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const float sum = block_reduce_sum(i < n ? x[i] : 0.0f);
    if (threadIdx.x == 0) {
        out[blockIdx.x] = sum;
    }
}

// Per warp w (32 values of x): sums[w] by __shfl_down_sync, xor_sums[w] by warp_reduce_sum (__shfl_xor_sync),
// scan[i] the inclusive prefix sum by __shfl_up_sync, broadcast[i] = x of lane 5 (__shfl_sync), and
// votes[w] = {ballot(x > 0), any(x > 2), all(x > -2)}.
extern "C" __global__ void emutest_warp_ops(float* sums, float* xor_sums, float* scan, float* broadcast, unsigned* votes, const float* x) {
    const i64 i = global_thread_index();
    const int lane = threadIdx.x % WARP_SIZE;
    const i64 warp = i / WARP_SIZE;
    const float v = x[i];
    float down = v;
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
        down += __shfl_down_sync(FULL_MASK, down, offset);
    }
    float prefix = v;
    for (int offset = 1; offset < WARP_SIZE; offset <<= 1) {
        const float other = __shfl_up_sync(FULL_MASK, prefix, offset);
        if (lane >= offset) {
            prefix += other;
        }
    }
    const float all = warp_reduce_sum(v);
    broadcast[i] = __shfl_sync(FULL_MASK, v, 5);
    scan[i] = prefix;
    const unsigned ballot = __ballot_sync(FULL_MASK, v > 0.0f);
    const int any = __any_sync(FULL_MASK, v > 2.0f);
    const int every = __all_sync(FULL_MASK, v > -2.0f);
    if (lane == 0) {
        sums[warp] = down;
        xor_sums[warp] = all;
        votes[warp * 3] = ballot;
        votes[warp * 3 + 1] = (unsigned)any;
        votes[warp * 3 + 2] = (unsigned)every;
    }
}

// bins[v] += count of v in values (0 <= v < 64): per-block counts in shared memory, then global atomics.
extern "C" __global__ void emutest_histogram(unsigned* bins, const int* values, i64 n) {
    __shared__ unsigned local[64];
    for (int b = threadIdx.x; b < 64; b += blockDim.x) {
        local[b] = 0;
    }
    __syncthreads();
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        atomicAdd(&local[values[i]], 1u);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < 64; b += blockDim.x) {
        if (local[b] != 0) {
            atomicAdd(&bins[b], local[b]);
        }
    }
}

// Float atomics and atomicMax: total += sum of x, maximum = max of the integers.
extern "C" __global__ void emutest_atomic_sum_max(float* total, int* maximum, const float* x, const int* integers, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        atomicAdd(total, x[i]);
        atomicMax(maximum, integers[i]);
    }
}

// Reverses each block's chunk of x through dynamic shared memory (blockDim.x floats).
extern "C" __global__ void emutest_reverse_blocks(float* out, const float* x) {
    float* staged = dynamic_shared<float>();
    const i64 i = global_thread_index();
    staged[threadIdx.x] = x[i];
    __syncthreads();
    out[i] = staged[blockDim.x - 1 - threadIdx.x];
}

// Threads 16.. leave while threads 0..15 wait at a barrier that can never complete.
extern "C" __global__ void emutest_exit_before_barrier(float* out) {
    if (threadIdx.x >= 16) {
        return;
    }
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// Even and odd threads wait at different barriers.
extern "C" __global__ void emutest_split_barriers(float* out) {
    if (threadIdx.x % 2 == 0) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}

// Writes out[0..n], one element too many.
extern "C" __global__ void emutest_write_one_past(float* out, int n) {
    for (i64 i = global_thread_index(); i <= n; i += grid_stride()) {
        out[i] = 1.0f;
    }
}

// Copies four floats from x + offset with one 128-bit Pack load: misaligned unless offset is a multiple of 4.
extern "C" __global__ void emutest_pack_copy(float* out, const float* x, int offset) {
    store_pack<4>(out, load_pack<4>(x + offset));
}
