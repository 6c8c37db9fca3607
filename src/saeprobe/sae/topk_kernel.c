/* Row-wise top-k of a float32 or bfloat16 matrix (values and column indices, any order).
 *
 * Each row keeps a min-heap of its k largest values so far. The row is scanned 16 values at a
 * time against the heap's minimum with one vector compare; only values above it touch the heap,
 * about k * ln(n / k) of them for n values in random order. Part of saeprobe (sae/native.py). */
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

static void sift_down(float *hv, int64_t *hi, int k, int pos) {
    for (;;) {
        int l = 2 * pos + 1, r = l + 1, s = pos;
        if (l < k && hv[l] < hv[s]) s = l;
        if (r < k && hv[r] < hv[s]) s = r;
        if (s == pos) return;
        float tv = hv[pos]; hv[pos] = hv[s]; hv[s] = tv;
        int64_t ti = hi[pos]; hi[pos] = hi[s]; hi[s] = ti;
        pos = s;
    }
}

static inline void offer(float *hv, int64_t *hi, int k, float v, int64_t j) {
    if (v > hv[0]) { hv[0] = v; hi[0] = j; sift_down(hv, hi, k, 0); }
}

static inline void widen_bf16(const uint16_t *src, float *dst, int n) {
    for (int t = 0; t < n; t++) {
        uint32_t bits = (uint32_t)src[t] << 16;
        memcpy(dst + t, &bits, 4);
    }
}

/* Top k of one float row of length n (k <= n). */
static void row_topk(const float *row, int64_t n, int k, float *hv, int64_t *hi) {
    for (int j = 0; j < k; j++) { hv[j] = row[j]; hi[j] = j; }
    for (int j = k / 2 - 1; j >= 0; j--) sift_down(hv, hi, k, j);
    int64_t j = k;
#if defined(__AVX512F__)
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(row + j);
        __mmask16 above = _mm512_cmp_ps_mask(v, _mm512_set1_ps(hv[0]), _CMP_GT_OQ);
        while (above) {
            int t = __builtin_ctz(above);
            above &= above - 1;
            offer(hv, hi, k, row[j + t], j + t);
        }
    }
#else
    for (; j + 16 <= n; j += 16) {
        float thr = hv[0];
        int any = 0;
        for (int t = 0; t < 16; t++) any |= row[j + t] > thr;
        if (!any) continue;
        for (int t = 0; t < 16; t++) offer(hv, hi, k, row[j + t], j + t);
    }
#endif
    for (; j < n; j++) offer(hv, hi, k, row[j], j);
}

/* Rows [r0, r1) of a row-major [rows, n] matrix with row stride ld elements. bf16 rows are
 * widened to float in a per-row buffer `scratch` of n floats. */
void topk_rows(const void *z, int is_bf16, int64_t r0, int64_t r1, int64_t n, int64_t ld,
               int k, float *vals, int64_t *idx, float *scratch) {
    for (int64_t r = r0; r < r1; r++) {
        const float *row;
        if (is_bf16) {
            widen_bf16((const uint16_t *)z + r * ld, scratch, (int)n);
            row = scratch;
        } else {
            row = (const float *)z + r * ld;
        }
        row_topk(row, n, k, vals + r * k, idx + r * k);
    }
}
