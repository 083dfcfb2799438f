/* Attention for small heads on the CPU, forward only (longformer_core/model/cpu_attention.py builds and calls it).

   PyTorch's CPU flash kernel runs at ~140 GFLOP/s on MiniLM's heads (head_dim 32) where its matmuls reach ~900: at
   that width each block's matmul is too small for its GEMM and the exponentials dominate. Here one (batch, head)
   pair is one task: its kept keys are gathered once, transposed, into fp32 scratch (padding keys are skipped,
   not masked), then 16 query rows at a time get their scores in 16 x 16 register tiles, an exact softmax in
   fp32 (the whole row of scores stays in L1: no online rescaling), and the 16 x head_dim output.

   Written with GCC vector extensions (and two AVX-512 intrinsics behind #ifdef): the loader compiles it with
   -march=native and uses it where that means AVX-512 (see ld_fast_here). Inputs and outputs are fp32 or bf16
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

/* o[r][0..32] += sum over keys c of p[r][c] * v[c][d0..d0+32], for 8 rows; p rows of `stride` floats. */
static void values_tile(const float *p, int64_t stride, const float *v, int dim, int d0, int n, v16f o[8][2]) {
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
    for (int r = 0; r < 8; r++) a[r][0] = (__m512)o[r][0], a[r][1] = (__m512)o[r][1];
    for (int c2 = 0; c2 < n / 2; c2++) {
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

/* What one call computes, shared by its tasks. Strides are in elements, three per tensor (q, k, v, global k,
   global v, out): between batch rows, between heads, between positions; the head dimension is contiguous. */
typedef struct {
    const char *q, *k, *v, *gk, *gv;
    char *out;
    const int64_t *st;
    const uint8_t *keep, *gkeep;
    int heads, lq, lk, n_global, dim, window, bf16, dot;
    float scale;
} Call;

/* One task's scratch: the columns' source rows, their dead flags, keys (transposed), values, a tile's scores,
   queries and bf16 probabilities. Columns: the keys (dense: only the kept ones; band: every position), padded
   to 16, then the global keys, padded to 16. */
typedef struct {
    const char **krow, **vrow;
    uint8_t *dead;
    float *kt, *vv, *s, *qq;
    uint16_t *pp;
    int n_pad, cols; /* key columns, all columns (the row stride of kt and s) */
} Work;

static Work carve(float *scratch, int cols, int dim) {
    Work w;
    w.krow = (const char **)scratch;
    w.vrow = w.krow + cols;
    w.dead = (uint8_t *)(w.vrow + cols);
    w.kt = (float *)(w.dead + cols + 64 - cols % 64);
    w.vv = w.kt + (int64_t)dim * cols;
    w.s = w.vv + (int64_t)cols * dim;
    w.qq = w.s + (int64_t)QB * cols;
    w.pp = (uint16_t *)(w.qq + QB * MAX_DIM);
    return w;
}

/* Which keys are columns, in what order, and which columns no query may see (padding columns included). */
static void plan_columns(const Call *c, int b, int h, Work *w) {
    const int64_t *ks = c->st + 3, *vs = c->st + 6, *gks = c->st + 9, *gvs = c->st + 12;
    int64_t unit = c->bf16 ? 2 : 4;
    const uint8_t *keep = c->keep ? c->keep + (int64_t)b * c->lk : NULL;
    int n = 0;
    for (int j = 0; j < c->lk; j++) {
        int kept = !keep || keep[j];
        if (!kept && c->window < 0) continue; /* dense: padding is left out, not masked */
        w->krow[n] = c->k + (b * ks[0] + h * ks[1] + j * ks[2]) * unit;
        w->vrow[n] = c->v + (b * vs[0] + h * vs[1] + j * vs[2]) * unit;
        w->dead[n++] = !kept;
    }
    w->n_pad = (n + KB - 1) / KB * KB;
    for (int j = n; j < w->n_pad; j++) w->krow[j] = w->vrow[j] = NULL, w->dead[j] = 1;
    int g_pad = (c->n_global + KB - 1) / KB * KB;
    for (int g = 0; g < g_pad; g++) {
        int col = w->n_pad + g, real = g < c->n_global;
        w->krow[col] = real ? c->gk + (b * gks[0] + h * gks[1] + g * gks[2]) * unit : NULL;
        w->vrow[col] = real ? c->gv + (b * gvs[0] + h * gvs[1] + g * gvs[2]) * unit : NULL;
        w->dead[col] = !real || (c->gkeep && !c->gkeep[(int64_t)b * c->n_global + g]);
    }
    w->cols = w->n_pad + g_pad;
}

/* The columns' keys transposed (fp32, or bf16 pairs of dimensions) and values (fp32 rows, or bf16 pairs of
   columns); a column with no source row is zeros. */
static void gather(const Call *c, const Work *w) {
    int dim = c->dim, cols = w->cols;
    if (c->dot) {
        uint32_t *kt = (uint32_t *)w->kt, *vv = (uint32_t *)w->vv;
        for (int col = 0; col < cols; col++) {
            const uint32_t *row = (const uint32_t *)w->krow[col];
            for (int d2 = 0; d2 < dim / 2; d2++) kt[(int64_t)d2 * cols + col] = row ? row[d2] : 0u;
        }
        for (int c2 = 0; c2 < cols / 2; c2++) {
            const uint16_t *lo = (const uint16_t *)w->vrow[2 * c2], *hi = (const uint16_t *)w->vrow[2 * c2 + 1];
            for (int d = 0; d < dim; d++)
                vv[(int64_t)c2 * dim + d] = (lo ? lo[d] : 0u) | (uint32_t)(hi ? hi[d] : 0u) << 16;
        }
        return;
    }
    for (int col = 0; col < cols; col++)
        for (int d = 0; d < dim; d++) {
            w->kt[(int64_t)d * cols + col] = w->krow[col] ? load1(w->krow[col], d, c->bf16) : 0.0f;
            w->vv[(int64_t)col * dim + d] = w->vrow[col] ? load1(w->vrow[col], d, c->bf16) : 0.0f;
        }
}

/* The column ranges query rows [i0, i0 + rows) may see: [lo, hi) pairs, at most two (keys, global keys). */
static int ranges_for(const Call *c, const Work *w, int i0, int rows, int *range) {
    int n = 0;
    if (c->window < 0) {
        range[n++] = 0, range[n++] = w->n_pad;
    } else {
        int lo = i0 - c->window, hi = i0 + rows + c->window; /* hi exclusive */
        lo = lo < 0 ? 0 : lo / KB * KB;
        hi = hi > w->n_pad ? w->n_pad : (hi + KB - 1) / KB * KB;
        if (hi > lo) range[n++] = lo, range[n++] = hi;
    }
    if (w->cols > w->n_pad) range[n++] = w->n_pad, range[n++] = w->cols;
    return n / 2;
}

/* Scores of a tile of query rows (in w->qq) over the ranges, packed into w->s, scaled; columns a row may not
   see at -3e38 (dead columns, and in band mode keys farther than the window); row maxima in mx_out. */
static void tile_scores(const Call *c, const Work *w, int i0, const int *range, int n_ranges, float *mx_out) {
    v16f acc[QB], mx[QB];
    const v16i lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int r = 0; r < QB; r++) mx[r] = splat(-3.0e38f);
    int at = 0; /* column of w->s */
    for (int k = 0; k < n_ranges; k++) {
        int band = c->window >= 0 && k == 0 && range[0] < w->n_pad;
        for (int col = range[2 * k]; col < range[2 * k + 1]; col += KB, at += KB) {
            if (c->dot) {
                scores_tile_dot((const uint32_t *)w->qq, (const uint32_t *)w->kt + col, w->cols, c->dim, acc);
                for (int r = 0; r < QB; r++) acc[r] *= splat(c->scale);
            } else {
                scores_tile(w->qq, w->kt + col, w->cols, c->dim, acc);
            }
            v16i dead;
            for (int l = 0; l < 16; l++) dead[l] = -(int)w->dead[col + l];
            for (int r = 0; r < QB; r++) {
                v16i off = dead;
                if (band) {
                    v16i dist = lane + (col - i0 - r); /* key - query */
                    off |= (dist > c->window) | (dist < -c->window);
                }
                acc[r] = pick(off, splat(-3.0e38f), acc[r]);
                mx[r] = pick(acc[r] > mx[r], acc[r], mx[r]);
                memcpy(w->s + (int64_t)r * w->cols + at, &acc[r], sizeof acc[r]);
            }
        }
    }
    for (int r = 0; r < QB; r++) {
        float m = mx[r][0];
        for (int l = 1; l < 16; l++) m = mx[r][l] > m ? mx[r][l] : m;
        mx_out[r] = m;
    }
}

/* exp(score - row max) over the first `width` packed columns, in place (bf16 copies in w->pp for the dot
   path); 1 / row sums in inv. */
static void tile_softmax(const Work *w, int width, const float *mx, int dot, float *inv) {
    for (int r = 0; r < QB; r++) {
        v16f sum = splat(0.0f);
        float *row = w->s + (int64_t)r * w->cols;
        for (int col = 0; col < width; col += KB) {
            v16f x;
            memcpy(&x, row + col, sizeof x);
            x = vexp(x - splat(mx[r]));
            sum += x;
            if (dot) {
#if HAVE_DPBF16
                __m256bh b = _mm512_cvtneps_pbh((__m512)x); /* round to nearest even */
                memcpy(w->pp + (int64_t)r * w->cols + col, &b, sizeof b);
#endif
            } else {
                memcpy(row + col, &x, sizeof x);
            }
        }
        float total = 0.0f;
        for (int l = 0; l < 16; l++) total += sum[l];
        inv[r] = 1.0f / total;
    }
}

/* Query rows [i0, i0 + rows) into w->qq: fp32 scaled, or raw bf16 pairs (the dot path scales the scores). */
static void load_queries(const Call *c, const char *q, int i0, int rows, Work *w) {
    int64_t q_row = c->st[2], unit = c->bf16 ? 2 : 4;
    for (int r = 0; r < QB; r++) {
        const char *src = q + (int64_t)(i0 + r) * q_row * unit;
        if (c->dot) {
            uint32_t *qp = (uint32_t *)w->qq + r * (MAX_DIM / 2);
            if (r < rows) memcpy(qp, src, 2 * c->dim);
            else memset(qp, 0, 2 * c->dim);
        } else {
            for (int d = 0; d < c->dim; d++) w->qq[r * MAX_DIM + d] = r < rows ? load1(src, d, c->bf16) * c->scale : 0.0f;
        }
    }
}

/* One (batch, head) task. */
static void one_task(const Call *c, int b, int h, float *scratch) {
    int64_t unit = c->bf16 ? 2 : 4;
    const char *q = c->q + (b * c->st[0] + h * c->st[1]) * unit;
    char *out = c->out + (b * c->st[15] + h * c->st[16]) * unit;
    int64_t out_row = c->st[17];
    int g_pad = (c->n_global + KB - 1) / KB * KB;
    Work w = carve(scratch, (c->lk + KB - 1) / KB * KB + g_pad, c->dim);
    plan_columns(c, b, h, &w);
    gather(c, &w);
    for (int i0 = 0; i0 < c->lq; i0 += QB) {
        int rows = c->lq - i0 < QB ? c->lq - i0 : QB, range[4];
        int n_ranges = ranges_for(c, &w, i0, rows, range), width = 0;
        for (int k = 0; k < n_ranges; k++) width += range[2 * k + 1] - range[2 * k];
        if (width == 0) { /* no key to see (dense, everything padded): zeros, as a row with no weights */
            for (int r = 0; r < rows; r++)
                for (int d = 0; d < c->dim; d++) store1(out, (int64_t)(i0 + r) * out_row + d, 0.0f, c->bf16);
            continue;
        }
        load_queries(c, q, i0, rows, &w);
        float mx[QB], inv[QB];
        tile_scores(c, &w, i0, range, n_ranges, mx);
        tile_softmax(&w, width, mx, c->dot, inv);
        for (int r0 = 0; r0 < rows; r0 += 8)
            for (int d0 = 0; d0 < c->dim; d0 += 32) {
                v16f o[8][2];
                for (int r = 0; r < 8; r++) o[r][0] = o[r][1] = splat(0.0f);
                for (int k = 0, at = 0; k < n_ranges; k++) {
                    int lo = range[2 * k], count = range[2 * k + 1] - lo;
                    if (c->dot)
                        values_tile_dot(w.pp + (int64_t)r0 * w.cols + at, w.cols, (const uint32_t *)w.vv + (int64_t)lo / 2 * c->dim,
                                        c->dim, d0, count, o);
                    else
                        values_tile(w.s + (int64_t)r0 * w.cols + at, w.cols, w.vv + (int64_t)lo * c->dim, c->dim, d0, count, o);
                    at += count;
                }
                for (int r = 0; r < 8 && r0 + r < rows; r++) {
                    int64_t base = (int64_t)(i0 + r0 + r) * out_row;
                    for (int d = 0; d < 32 && d0 + d < c->dim; d++)
                        store1(out, base + d0 + d, o[r][d / 16][d % 16] * inv[r0 + r], c->bf16);
                }
            }
    }
}

/* 1 when built with AVX-512: the 16 x 16 tiles assume 32 vector registers of 16 floats. Built without it (AVX2,
   NEON) the code is still correct, but its tiles spill and it runs ~10x slower than with it: the loader then
   uses PyTorch's attention instead. */
int ld_fast_here(void) {
#ifdef __AVX512F__
    return 1;
#else
    return 0;
#endif
}

/* Scratch floats one task needs (the caller allocates one buffer per thread). */
int64_t ld_scratch_floats(int lk, int n_global, int dim) {
    int64_t cols = (lk + KB - 1) / KB * KB + (n_global + KB - 1) / KB * KB;
    return 5 * cols + 64 + 2 * (int64_t)dim * cols + (int64_t)QB * cols * 3 / 2 + (int64_t)QB * MAX_DIM + 64;
}

/* Tasks [task_begin, task_end) of batch x heads (task t: batch t / heads, head t % heads) of
   softmax(q k^T * scale) v, where query i sees key j when keep[j] (NULL: every key) and, for window >= 0, when
   |i - j| <= window; and every query also sees the n_global global keys gk / gv whose gkeep is set (NULL: all).
   strides: 18 (see Call). Inputs and out are fp32 (bf16 = 0) or bf16 (bf16 = 1).
   Returns 0, or -1 when dim is not a multiple of 16 or above MAX_DIM. */
int ld_attention(const void *q, const void *k, const void *v, const void *gk, const void *gv, void *out, int bf16,
                 int heads, int lq, int lk, int n_global, int dim, const int64_t *strides, const uint8_t *keep,
                 const uint8_t *gkeep, int window, float scale, int task_begin, int task_end, float *scratch) {
    if (dim % 16 != 0 || dim > MAX_DIM) return -1;
    Call c = {(const char *)q, (const char *)k, (const char *)v, (const char *)gk, (const char *)gv, (char *)out,
              strides, keep, gkeep, heads, lq, lk, n_global, dim, window, bf16, bf16 && HAVE_DPBF16, scale};
    for (int t = task_begin; t < task_end; t++) one_task(&c, t / heads, t % heads, scratch);
    return 0;
}
