/*
Token embedding: a gather of rows of the embedding table by token id.

  embedding_forward   out[t, c] = table[tokens[t], c]

Shapes: table (V, C) bf16 (V = vocab_size, C = dim); tokens (N) int32, N = B*T; out (N, C) bf16.

Forward saves nothing. There is no backward kernel: the table is frozen (ReFT trains interventions only), so
no gradient flows into it, and the gradient stops at the first layer's input.

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates.

Bounds: token ids come from the tokenizer, but may live only on the device. An id outside [0, V) writes
nothing to its row of out (the row keeps whatever it held) and sets *error = 1 when error is not null; the
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
