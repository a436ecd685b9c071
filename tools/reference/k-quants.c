// Runs llama.cpp's own K-quant reference routines (from the prebuilt libggml-base.so that
// node-llama-cpp ships) on values read from stdin, for k-quant-fixtures.mjs.
//   k-quants TYPE < values.f32 > out.bin     TYPE = q4_K | q5_K | q6_K | q8_K
// stdin: n little-endian f32 (n % 256 == 0). stdout: the quantised blocks (quantize_row_TYPE_ref),
// then, except for q8_K, the f32 values dequantize_row_TYPE gives for those blocks.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void quantize_row_q4_K_ref(const float * x, void * y, int64_t k);
void quantize_row_q5_K_ref(const float * x, void * y, int64_t k);
void quantize_row_q6_K_ref(const float * x, void * y, int64_t k);
void quantize_row_q8_K_ref(const float * x, void * y, int64_t k);
void dequantize_row_q4_K(const void * x, float * y, int64_t k);
void dequantize_row_q5_K(const void * x, float * y, int64_t k);
void dequantize_row_q6_K(const void * x, float * y, int64_t k);

int main(int argc, char ** argv) {
    if (argc != 2) { fprintf(stderr, "usage: k-quants q4_K|q5_K|q6_K|q8_K < values.f32\n"); return 2; }
    size_t cap = 1 << 20, n = 0;
    float * x = malloc(cap * sizeof(float));
    size_t got;
    while ((got = fread(x + n, sizeof(float), cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) { cap *= 2; x = realloc(x, cap * sizeof(float)); }
    }
    if (n == 0 || n % 256 != 0) { fprintf(stderr, "k-quants: %zu values is not a positive multiple of 256\n", n); return 1; }
    const char * t = argv[1];
    size_t bb = !strcmp(t, "q4_K") ? 144 : !strcmp(t, "q5_K") ? 176 : !strcmp(t, "q6_K") ? 210 : !strcmp(t, "q8_K") ? 292 : 0;
    if (bb == 0) { fprintf(stderr, "k-quants: unknown type %s\n", t); return 2; }
    uint8_t * q = calloc(n / 256, bb);
    float * y = malloc(n * sizeof(float));
    if (!strcmp(t, "q4_K")) { quantize_row_q4_K_ref(x, q, n); dequantize_row_q4_K(q, y, n); }
    if (!strcmp(t, "q5_K")) { quantize_row_q5_K_ref(x, q, n); dequantize_row_q5_K(q, y, n); }
    if (!strcmp(t, "q6_K")) { quantize_row_q6_K_ref(x, q, n); dequantize_row_q6_K(q, y, n); }
    if (!strcmp(t, "q8_K")) quantize_row_q8_K_ref(x, q, n);
    fwrite(q, bb, n / 256, stdout);
    if (strcmp(t, "q8_K")) fwrite(y, sizeof(float), n, stdout);
    return 0;
}
