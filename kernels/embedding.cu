/*
Row gathers and scatters: the token embedding, and the row moves the engine does on the residual stream
(selecting labelled rows for the LM head, writing K and V into the KV cache, placing edited rows).

  embedding_forward         out[t, c] = table[tokens[t], c]          (also any row gather: tokens = row ids)
  scatter_rows_forward      out[rows[i], c] = src[i, c]
  scatter_add_rows_forward  out[rows[i], c] = bf16(out[rows[i], c] + src[i, c])   (a gather's backward)

Shapes: table (V, C) bf16 (V = vocab_size, C = dim); tokens (N) int32, N = B*T; out (N, C) bf16. For the
scatters src (N, C), rows (N), out (R, C).

Forward saves nothing. The embedding table is frozen (ReFT trains interventions only), so no gradient flows
into it, and the gradient stops at the first layer's input; scatter_add_rows is the backward of a gather of
activations. It gives each thread one column and walks the rows in order, so repeated row ids add up in a
fixed order (deterministic, no atomics); scatter_rows needs distinct row ids (the last write wins otherwise).

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates.

Bounds: token ids come from the tokenizer, but may live only on the device. An id outside [0, V) (or a row
outside [0, R)) writes nothing (the row keeps whatever it held) and sets *error = 1 when error is not null; the
caller checks the flag after the step, as the CPU backend throws on such an id.

One block per token (grid.x = N), the block's threads copy the row, 128 bits at a time when C % 8 == 0 and
both pointers are 16-byte aligned, else one element at a time. 64-bit offsets.
*/
#include "common.cuh"

extern "C" __global__ void embedding_forward(bf16* out, int* error, const bf16* table, const int* tokens, int count,
                                             int vocabulary, int columns) {
    const int t = blockIdx.x;
    if (t >= count) {
        return;
    }
    const int id = tokens[t];
    if (id < 0 || id >= vocabulary) {
        if (threadIdx.x == 0 && error != nullptr) {
            *error = 1;
        }
        return;
    }
    const bf16* src = table + (i64)id * columns;
    bf16* dst = out + (i64)t * columns;
    const int pack = Packed128<bf16>::size;
    if (columns % pack == 0 && (((u64)table | (u64)out) & 15) == 0) {
        for (int c = threadIdx.x * pack; c < columns; c += blockDim.x * pack) {
            store128(dst + c, load128(src + c));
        }
    } else {
        for (int c = threadIdx.x; c < columns; c += blockDim.x) {
            dst[c] = src[c];
        }
    }
}

extern "C" __global__ void scatter_rows_forward(bf16* out, int* error, const bf16* src, const int* rows, int count,
                                                int out_rows, int columns) {
    const int i = blockIdx.x;
    if (i >= count) {
        return;
    }
    const int row = rows[i];
    if (row < 0 || row >= out_rows) {
        if (threadIdx.x == 0 && error != nullptr) {
            *error = 1;
        }
        return;
    }
    const bf16* s = src + (i64)i * columns;
    bf16* d = out + (i64)row * columns;
    for (int c = threadIdx.x; c < columns; c += blockDim.x) {
        d[c] = s[c];
    }
}

// grid.x * blockDim.x >= columns: one thread per column, rows in order.
extern "C" __global__ void scatter_add_rows_forward(bf16* out, int* error, const bf16* src, const int* rows, int count,
                                                    int out_rows, int columns) {
    const i64 c = global_thread_index();
    if (c >= columns) {
        return;
    }
    for (int i = 0; i < count; i++) {
        const int row = rows[i];
        if (row < 0 || row >= out_rows) {
            if (error != nullptr) {
                *error = 1;
            }
            continue;
        }
        bf16* d = out + (i64)row * columns + c;
        *d = float_to_bf16(bf16_to_float(*d) + bf16_to_float(src[(i64)i * columns + c]));
    }
}
