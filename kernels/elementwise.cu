/*
Elementwise helpers and a row reduction: the small ops every later kernel file and the C# orchestration lean on.

  fill_forward               out[i] = value                                  out (n) f32
  axpy_forward               y[i] += alpha * x[i]                            x, y (n) f32
  add_forward                out[i] = bf16(float(a[i]) + float(b[i]))        a, b, out (n) bf16; out may alias a
  scale_forward              x[i] *= factor, in place                        x (n) f32
  scale_bf16_forward         x[i] = bf16(float(x[i]) * factor), in place     x (n) bf16
  uniform_bf16_forward       out[i] = bf16(scale * (2 u(seed, i) - 1))        out (n) bf16: random weights on the
                             device, u = top 24 bits of splitmix64(seed + i) / 2^24 (CounterHash.Uniform on the host)
  dropout_scale_forward      out[i] = u(stream, i) < p ? 0 : keep            out (n) f32: dropout masks made on the
                             device, u = top 53 bits of splitmix64(stream + i) / 2^53 in double (CounterHash.Drops)
  cast_f32_to_bf16_forward   out[i] = bf16(x[i]), round to nearest even     x (n) f32, out (n) bf16
  cast_bf16_to_f32_forward   out[i] = float(x[i]), exact                     x (n) bf16, out (n) f32
  rowsumsq_forward           out[r] = sum_c float(x[r, c])^2                 x (N, C) bf16, out (N) f32
  rowsumsq_f32_forward       the same over f32 rows                          x (N, C) f32, out (N) f32

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. axpy is the accumulate: it adds a scaled gradient into a
parameter gradient or into the residual stream's gradient. These ops are linear or are reductions used by
norms and by gradient clipping, so they have no backward kernels of their own: the backward of add is two
axpy/copies, of a cast is the opposite cast.

Forward saves nothing. Elementwise kernels use a grid-stride loop over 64-bit indices, so any n runs with the
grid the launcher picks. rowsumsq runs one block per row and accumulates in fp32; it reads 128 bits at a time
when x is 16-byte aligned and the row length keeps every row so (C % 8 == 0 for bf16, C % 4 == 0 for f32), and
falls back to scalar loads otherwise.
*/
#include "common.cuh"

extern "C" __global__ void fill_forward(float* out, float value, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        out[i] = value;
    }
}

extern "C" __global__ void axpy_forward(float* y, const float* x, float alpha, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        y[i] += alpha * x[i];
    }
}

// The residual stream's add (map2: 128 bits at a time when aligned; the launcher sizes for n / 8).
extern "C" __global__ void add_forward(bf16* out, const bf16* a, const bf16* b, i64 n) {
    map2(out, a, b, n, [](float x, float y) { return x + y; });
}

extern "C" __global__ void scale_forward(float* x, float factor, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        x[i] *= factor;
    }
}

extern "C" __global__ void scale_bf16_forward(bf16* x, float factor, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        x[i] = float_to_bf16(bf16_to_float(x[i]) * factor);
    }
}

// splitmix64's finalizer (CounterHash.Mix in the engine): the same 64-bit arithmetic on host and device.
__device__ __forceinline__ u64 mix64(u64 z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

extern "C" __global__ void uniform_bf16_forward(bf16* out, u64 seed, float scale, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        const float u = (float)(mix64(seed + (u64)i) >> 40) * (1.0f / 16777216.0f);
        out[i] = float_to_bf16(__fmul_rn(scale, u * 2.0f - 1.0f)); // one rounding, as on the host
    }
}

extern "C" __global__ void dropout_scale_forward(float* out, u64 stream, double probability, float keep, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        const double u = (double)(mix64(stream + (u64)i) >> 11) * (1.0 / 9007199254740992.0); // exact: 53 bits
        out[i] = u < probability ? 0.0f : keep;
    }
}

extern "C" __global__ void cast_f32_to_bf16_forward(bf16* out, const float* x, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        out[i] = float_to_bf16(x[i]);
    }
}

extern "C" __global__ void cast_bf16_to_f32_forward(float* out, const bf16* x, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        out[i] = bf16_to_float(x[i]);
    }
}

// One block per row; blockDim.x a multiple of 32.
template <typename T>
__device__ void rowsumsq(float* out, const T* x, int rows, int columns) {
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const T* xr = x + (i64)row * columns;
    float sum = 0.0f;
    const int pack = Packed128<T>::size;
    if (columns % pack == 0 && ((u64)x & 15) == 0) {
        for (int c = threadIdx.x * pack; c < columns; c += blockDim.x * pack) {
            Packed128<T> v = load128(xr + c);
            for (int k = 0; k < pack; k++) {
                float f = to_float(v[k]);
                sum += f * f;
            }
        }
    } else {
        for (int c = threadIdx.x; c < columns; c += blockDim.x) {
            float f = to_float(xr[c]);
            sum += f * f;
        }
    }
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) {
        out[row] = sum;
    }
}

extern "C" __global__ void rowsumsq_forward(float* out, const bf16* x, int rows, int columns) {
    rowsumsq(out, x, rows, columns);
}

extern "C" __global__ void rowsumsq_f32_forward(float* out, const float* x, int rows, int columns) {
    rowsumsq(out, x, rows, columns);
}
