/*
What the two attention files share (attention.cu: direct kernels, any head size, the emulator-portable path;
flash_attention.cu: tensor-core tiles for head sizes 64 and 128): the call's shape as the launcher passes it, and
which keys a query sees.

Query i of sequence b sits at absolute position QueryOffset + i and sees key j when j <= QueryOffset + i,
j < KeyLength and the mask byte of (b, j) is nonzero (no mask: every key).
*/
#pragma once

#include "common.cuh"

// The call's shape (AttentionShape) and the softmax scale; passed by value, laid out as the launcher's struct.
struct AttentionDims {
    int batch;
    int query_length;
    int key_length;
    int key_stride;
    int query_offset;
    int heads;
    int kv_heads;
    int head_size;
    float scale; // 1 / sqrt(head_size), computed on the host as the CPU backend computes it
};

__device__ __forceinline__ float negative_infinity() {
    return __uint_as_float(0xff800000u);
}

// Whether query i (within its sequence) sees key j; mask is the sequence's row of mask bytes or null.
__device__ __forceinline__ bool key_visible(int i, int j, const unsigned char* mask, const AttentionDims& dims) {
    return j <= dims.query_offset + i && j < dims.key_length && (mask == nullptr || mask[j] != 0);
}
