/* Attention for small heads on the CPU, forward only (longformer_core/model/cpu_attention.py builds and calls it).

   PyTorch's CPU flash kernel runs at ~140 GFLOP/s on MiniLM's heads (head_dim 32) where its matmuls reach ~900: at
   that width each block's matmul is too small for its GEMM and the exponentials dominate. Here one (batch, head)
   pair is one task: its kept keys are gathered once, transposed, into fp32 scratch (padding keys are skipped,
   not masked), then 16 query rows at a time get their scores in 16 x 16 register tiles, an exact softmax in
   fp32 (the whole row of scores stays in L1: no online rescaling), and the 16 x head_dim output.

   Written with GCC vector extensions, not intrinsics, so one source builds for whatever the machine has
   (AVX-512, AVX2, SSE, NEON): the loader compiles it with -march=native. Inputs and outputs are fp32 or bf16
   (rounded to nearest even); arithmetic is fp32. No threads here: the caller shares tasks out. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX512BF16__)
#include <immintrin.h>
#endif

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));

#define QB 16 /* query rows per tile */
#define KB 16 /* keys per score tile (one vector) */
#define MAX_DIM 128

static inline v16f splat(float x) { return (v16f){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

/* Lane-wise m ? a : b (m: all ones or all zeros per lane, as vector comparisons give); C has no vector ?: */
static inline v16f pick(v16i m, v16f a, v16f b) { return (v16f)(((v16i)a & m) | ((v16i)b & ~m)); }

/* exp(x) for x <= 0 (scores minus their row maximum), relative error ~1e-7; below -87 it returns 0.
   Cody-Waite reduction to r in [-ln2/2, ln2/2] and Cephes' polynomial; 2^n by AVX-512's scalef where there is one,
   else by building the exponent's bits. */
static inline v16f vexp(v16f x) {
    const v16f lo = splat(-87.0f);
    v16i under = x < lo;
    x = pick(under, lo, x);
    v16f nf = (x * splat(1.44269504088896341f) + splat(12582912.0f)) - splat(12582912.0f); /* round(x / ln2) */
    v16f r = x - nf * splat(0.693359375f) + nf * splat(2.12194440e-4f);
    v16f p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f);
    p = p * r + splat(8.3334519073e-3f);
    p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f);
    p = p * r + splat(5.0000001201e-1f);
    p = p * r * r + r + splat(1.0f);
#ifdef __AVX512F__
    return (v16f)((v16i)(v16f)_mm512_scalef_ps((__m512)p, (__m512)nf) & ~under);
#else
    v16i scale = (__builtin_convertvector(nf, v16i) + 127) << 23;
    return (v16f)((v16i)(p * (v16f)scale) & ~under);
#endif
}

static inline float load1(const void *base, int64_t off, int bf16) {
    if (bf16) {
        uint32_t bits = (uint32_t)((const uint16_t *)base)[off] << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    return ((const float *)base)[off];
}

static inline void store1(void *base, int64_t off, float x, int bf16) {
    if (bf16) {
        uint32_t u;
        memcpy(&u, &x, 4);
        u += 0x7FFFu + ((u >> 16) & 1u);
        ((uint16_t *)base)[off] = (uint16_t)(u >> 16);
    } else {
        ((float *)base)[off] = x;
    }
}

#ifdef __AVX512BF16__
#define HAVE_DPBF16 1
#else
#define HAVE_DPBF16 0
#endif

/* Scores of 16 query rows against 16 keys, fp32: acc[r] = q[r] . kt[:, 0..16] (kt: dim rows of `stride` floats). */
static void scores_tile(const float *q, const float *kt, int64_t stride, int dim, v16f *acc) {
    for (int r = 0; r < QB; r++) acc[r] = splat(0.0f);
    for (int d = 0; d < dim; d++) {
        v16f k;
        memcpy(&k, kt + d * stride, sizeof k);
        for (int r = 0; r < QB; r++) acc[r] += splat(q[r * MAX_DIM + d]) * k;
    }
}

/* The same from bf16 pairs with AVX-512 BF16's dot product: q rows of MAX_DIM / 2 pairs, kt dim / 2 rows. */
static void scores_tile_dot(const uint32_t *q, const uint32_t *kt, int64_t stride, int dim, v16f *acc) {
#if HAVE_DPBF16
    __m512 a[QB];
    for (int r = 0; r < QB; r++) a[r] = _mm512_setzero_ps();
    for (int d2 = 0; d2 < dim / 2; d2++) {
        __m512bh k = (__m512bh)_mm512_loadu_si512(kt + d2 * stride);
        for (int r = 0; r < QB; r++)
            a[r] = _mm512_dpbf16_ps(a[r], (__m512bh)_mm512_set1_epi32((int)q[r * (MAX_DIM / 2) + d2]), k);
    }
    for (int r = 0; r < QB; r++) acc[r] = (v16f)a[r];
#else
    (void)q, (void)kt, (void)stride, (void)dim, (void)acc;
#endif
}

/* o[r][0..32] = sum over keys c of p[r][c] * v[c][d0..d0+32], for 8 rows; p rows of `stride` floats. */
static void values_tile(const float *p, int64_t stride, const float *v, int dim, int d0, int n, v16f o[8][2]) {
    for (int r = 0; r < 8; r++) o[r][0] = o[r][1] = splat(0.0f);
    for (int c = 0; c < n; c++) {
        v16f v0, v1 = splat(0.0f);
        memcpy(&v0, v + (int64_t)c * dim + d0, sizeof v0);
        if (d0 + 16 < dim) memcpy(&v1, v + (int64_t)c * dim + d0 + 16, sizeof v1);
        for (int r = 0; r < 8; r++) {
            v16f pr = splat(p[(int64_t)r * stride + c]);
            o[r][0] += pr * v0;
            o[r][1] += pr * v1;
        }
    }
}

/* The same with bf16 probabilities (p: rows of `stride` bf16) and values in key pairs: v[c2][d] holds keys 2 c2 and
   2 c2 + 1 of dimension d. */
static void values_tile_dot(const uint16_t *p, int64_t stride, const uint32_t *v, int dim, int d0, int n,
                            v16f o[8][2]) {
#if HAVE_DPBF16
    __m512 a[8][2];
    for (int r = 0; r < 8; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int c2 = 0; c2 < (n + 1) / 2; c2++) {
        __m512bh v0 = (__m512bh)_mm512_loadu_si512(v + (int64_t)c2 * dim + d0);
        __m512bh v1 = d0 + 16 < dim ? (__m512bh)_mm512_loadu_si512(v + (int64_t)c2 * dim + d0 + 16)
                                    : (__m512bh)_mm512_setzero_si512();
        for (int r = 0; r < 8; r++) {
            uint32_t pair;
            memcpy(&pair, p + (int64_t)r * stride + 2 * c2, 4);
            __m512bh pr = (__m512bh)_mm512_set1_epi32((int)pair);
            a[r][0] = _mm512_dpbf16_ps(a[r][0], pr, v0);
            a[r][1] = _mm512_dpbf16_ps(a[r][1], pr, v1);
        }
    }
    for (int r = 0; r < 8; r++) o[r][0] = (v16f)a[r][0], o[r][1] = (v16f)a[r][1];
#else
    (void)p, (void)stride, (void)v, (void)dim, (void)d0, (void)n, (void)o;
#endif
}

/* Layout of one task's scratch (floats): key indices, keys, values, a tile's scores, its queries, its bf16 probs. */
typedef struct {
    int *idx;
    float *kt, *vv, *s, *qq;
    uint16_t *pp;
} Scratch;

static Scratch carve(float *scratch, int lk, int dim, int n_pad) {
    Scratch w;
    w.idx = (int *)scratch;
    w.kt = scratch + lk;
    w.vv = w.kt + (int64_t)dim * n_pad;
    w.s = w.vv + (int64_t)n_pad * dim;
    w.qq = w.s + (int64_t)QB * n_pad;
    w.pp = (uint16_t *)(w.qq + QB * MAX_DIM);
    return w;
}

/* The kept keys and their values, laid out for the tiles: transposed keys (fp32, or bf16 pairs of dimensions)
   and values (fp32 rows, or bf16 pairs of keys); columns past n are zeros. */
static void gather(const void *k, int64_t k_row, const void *v, int64_t v_row, int n, int n_pad, int dim, int bf16,
                   int dot, Scratch w) {
    if (dot) {
        uint32_t *kt = (uint32_t *)w.kt, *vv = (uint32_t *)w.vv;
        for (int c = 0; c < n_pad; c++) {
            const uint32_t *row = (const uint32_t *)((const uint16_t *)k + (c < n ? w.idx[c] * k_row : 0));
            for (int d2 = 0; d2 < dim / 2; d2++) kt[(int64_t)d2 * n_pad + c] = c < n ? row[d2] : 0u;
        }
        for (int c2 = 0; c2 < n_pad / 2; c2++)
            for (int d = 0; d < dim; d++) {
                int c = 2 * c2;
                uint32_t lo = c < n ? ((const uint16_t *)v)[w.idx[c] * v_row + d] : 0u;
                uint32_t hi = c + 1 < n ? ((const uint16_t *)v)[w.idx[c + 1] * v_row + d] : 0u;
                vv[(int64_t)c2 * dim + d] = lo | hi << 16;
            }
        return;
    }
    for (int d = 0; d < dim; d++)
        for (int c = 0; c < n_pad; c++) w.kt[(int64_t)d * n_pad + c] = c < n ? load1(k, w.idx[c] * k_row + d, bf16) : 0.0f;
    for (int c = 0; c < n_pad; c++)
        for (int d = 0; d < dim; d++) w.vv[(int64_t)c * dim + d] = c < n ? load1(v, w.idx[c] * v_row + d, bf16) : 0.0f;
}

/* Scores of a tile of query rows (already in w.qq) into w.s, scaled, padded columns at -3e38; row maxima in mx. */
static void tile_scores(Scratch w, int n, int n_pad, int dim, float scale, int dot, float *mx_out) {
    v16f acc[QB], mx[QB];
    for (int r = 0; r < QB; r++) mx[r] = splat(-3.0e38f);
    for (int c = 0; c < n_pad; c += KB) {
        if (dot) {
            scores_tile_dot((const uint32_t *)w.qq, (const uint32_t *)w.kt + c, n_pad, dim, acc);
            for (int r = 0; r < QB; r++) acc[r] *= splat(scale);
        } else {
            scores_tile(w.qq, w.kt + c, n_pad, dim, acc);
        }
        if (c + KB > n) {
            v16i lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
            v16i dead = lane >= (n - c);
            for (int r = 0; r < QB; r++) acc[r] = pick(dead, splat(-3.0e38f), acc[r]);
        }
        for (int r = 0; r < QB; r++) {
            mx[r] = pick(acc[r] > mx[r], acc[r], mx[r]);
            memcpy(w.s + (int64_t)r * n_pad + c, &acc[r], sizeof acc[r]);
        }
    }
    for (int r = 0; r < QB; r++) {
        float m = mx[r][0];
        for (int l = 1; l < 16; l++) m = mx[r][l] > m ? mx[r][l] : m;
        mx_out[r] = m;
    }
}

/* exp(score - row max) in place (and as bf16 in w.pp for the dot path); returns 1 / row sums in inv. */
static void tile_softmax(Scratch w, int n_pad, const float *mx, int dot, float *inv) {
    for (int r = 0; r < QB; r++) {
        v16f sum = splat(0.0f);
        float *row = w.s + (int64_t)r * n_pad;
        for (int c = 0; c < n_pad; c += KB) {
            v16f x;
            memcpy(&x, row + c, sizeof x);
            x = vexp(x - splat(mx[r]));
            sum += x;
            if (dot) {
#if HAVE_DPBF16
                __m256bh b = _mm512_cvtneps_pbh((__m512)x); /* round to nearest even, as to_bf16 */
                memcpy(w.pp + (int64_t)r * n_pad + c, &b, sizeof b);
#endif
            } else
                memcpy(row + c, &x, sizeof x);
        }
        float total = 0.0f;
        for (int l = 0; l < 16; l++) total += sum[l];
        inv[r] = 1.0f / total;
    }
}

/* One (batch, head) task: q (lq x dim), k and v (lk x dim), element (i, d) at base + i * stride + d. */
static void one_task(const void *q, int64_t q_row, const void *k, int64_t k_row, const void *v, int64_t v_row,
                     void *out, int64_t out_row, int lq, int lk, int dim, const uint8_t *keep, float scale,
                     int bf16, float *scratch) {
    int dot = bf16 && HAVE_DPBF16;
    int n = 0;
    int *idx = (int *)scratch;
    for (int j = 0; j < lk; j++)
        if (!keep || keep[j]) idx[n++] = j;
    int n_pad = (n + KB - 1) / KB * KB;
    Scratch w = carve(scratch, lk, dim, n_pad);
    gather(k, k_row, v, v_row, n, n_pad, dim, bf16, dot, w);

    for (int i0 = 0; i0 < lq; i0 += QB) {
        int rows = lq - i0 < QB ? lq - i0 : QB;
        if (n == 0) { /* every key masked: zeros, as a fully masked row has no weights */
            for (int r = 0; r < rows; r++)
                for (int d = 0; d < dim; d++) store1(out, (int64_t)(i0 + r) * out_row + d, 0.0f, bf16);
            continue;
        }
        for (int r = 0; r < QB; r++) {
            if (dot) {
                uint32_t *qp = (uint32_t *)w.qq + r * (MAX_DIM / 2);
                if (r < rows) memcpy(qp, (const uint16_t *)q + (int64_t)(i0 + r) * q_row, 2 * dim);
                else memset(qp, 0, 2 * dim);
            } else {
                for (int d = 0; d < dim; d++)
                    w.qq[r * MAX_DIM + d] = r < rows ? load1(q, (int64_t)(i0 + r) * q_row + d, bf16) * scale : 0.0f;
            }
        }
        float mx[QB], inv[QB];
        tile_scores(w, n, n_pad, dim, scale, dot, mx);
        tile_softmax(w, n_pad, mx, dot, inv);
        for (int r0 = 0; r0 < rows; r0 += 8)
            for (int d0 = 0; d0 < dim; d0 += 32) {
                v16f o[8][2];
                if (dot) values_tile_dot(w.pp + (int64_t)r0 * n_pad, n_pad, (const uint32_t *)w.vv, dim, d0, n, o);
                else values_tile(w.s + (int64_t)r0 * n_pad, n_pad, w.vv, dim, d0, n, o);
                for (int r = 0; r < 8 && r0 + r < rows; r++) {
                    int64_t base = (int64_t)(i0 + r0 + r) * out_row;
                    for (int d = 0; d < 32 && d0 + d < dim; d++)
                        store1(out, base + d0 + d, o[r][d / 16][d % 16] * inv[r0 + r], bf16);
                }
            }
    }
}

/* Scratch floats one task needs (the caller allocates one buffer per thread). */
int64_t ld_scratch_floats(int lk, int dim) {
    int64_t n_pad = (lk + KB - 1) / KB * KB;
    return lk + 2 * (int64_t)dim * n_pad + (int64_t)QB * n_pad * 3 / 2 + (int64_t)QB * MAX_DIM + 64;
}

/* Tasks [task_begin, task_end) of batch x heads: task t is batch t / heads, head t % heads.
   Strides are in elements: *_b between batch rows, *_h between heads, *_i between sequence positions (the head
   dimension is contiguous). keep: (batch, lk) bytes, nonzero for keys every query may see, or NULL.
   Returns 0, or -1 when dim is not a multiple of 16 or above MAX_DIM. */
int ld_attention(const void *q, const void *k, const void *v, void *out, int bf16, int heads, int lq, int lk,
                 int dim, const int64_t *strides, const uint8_t *keep, float scale, int task_begin, int task_end,
                 float *scratch) {
    if (dim % 16 != 0 || dim > MAX_DIM) return -1;
    const int64_t *qs = strides, *ks = strides + 3, *vs = strides + 6, *os = strides + 9;
    int64_t unit = bf16 ? 2 : 4;
    for (int t = task_begin; t < task_end; t++) {
        int b = t / heads, h = t % heads;
        const char *qp = (const char *)q + (b * qs[0] + h * qs[1]) * unit;
        const char *kp = (const char *)k + (b * ks[0] + h * ks[1]) * unit;
        const char *vp = (const char *)v + (b * vs[0] + h * vs[1]) * unit;
        char *op = (char *)out + (b * os[0] + h * os[1]) * unit;
        one_task(qp, qs[2], kp, ks[2], vp, vs[2], op, os[2], lq, lk, dim, keep ? keep + (int64_t)b * lk : NULL,
                 scale, bf16, scratch);
    }
    return 0;
}
