/* D's elementwise steps on the CPU for the fused engine: dropout, maxout and their gradients, each in one pass
 * over rows of a (rows, cols) matrix with a row stride (the passes pad rows to cache lines), and the losses'
 * heads. Built and loaded by worker/training/elementwise.py, which keeps the same steps as torch ops (the GPU,
 * or no C compiler) and says what each computes. The dropout and maxout kernels only select and copy numbers
 * (no arithmetic on them), so fp32 and bf16 (stored as uint16) give exact results. OpenMP threads: the ones
 * torch uses (the same libgomp). */
#include <math.h>
#include <stdint.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL
#define PARALLEL_MIN 8192 /* entries: below this a parallel region costs more than it saves */
#define BLOCK 1024        /* entries of a row handled at once: the scratch arrays stay small */

/* SplitMix64's output function: word k of the stream seeded s is mix64(s + (k + 1) * GOLDEN). */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline float from_f32(float x) { return x; }
static inline float from_bf16(uint16_t b) {
    union { uint32_t u; float f; } v = { (uint32_t)b << 16 };
    return v.f;
}

#define DEFINE_KERNELS(T, SUF, TO_FLOAT)                                                                         \
/* Entry e = r * cols + c is kept when 16-bit word e of stream `seed` (its words split in four, low bits      \
 * first) is < thr: P(keep) = thr / 65536. dst = src where kept, else 0 (src may be dst; NULL: mask only). */  \
void dropout_##SUF(const T *src, int64_t src_ld, T *dst, int64_t dst_ld, uint8_t *mask, int64_t rows,         \
                   int64_t cols, uint64_t seed, uint32_t thr) {                                               \
    _Pragma("omp parallel for schedule(static) if (rows * cols >= PARALLEL_MIN)")                             \
    for (int64_t r = 0; r < rows; r++)                                                                        \
        for (int64_t c0 = 0; c0 < cols; c0 += BLOCK) {                                                        \
            int64_t n = cols - c0 < BLOCK ? cols - c0 : BLOCK, e0 = r * cols + c0;                            \
            int64_t k0 = e0 >> 2, nk = ((e0 + n + 3) >> 2) - k0;                                              \
            union { uint64_t w[BLOCK / 4 + 1]; uint16_t h[BLOCK + 4]; } words; /* little-endian: h[4k + j] */ \
            for (int64_t k = 0; k < nk; k++) words.w[k] = mix64(seed + (uint64_t)(k0 + k + 1) * GOLDEN);      \
            const uint16_t *u = words.h + (e0 & 3);                                                           \
            uint8_t *m = mask + e0;                                                                           \
            for (int64_t c = 0; c < n; c++) m[c] = u[c] < thr;                                                \
            if (src) {                                                                                        \
                const T *s = src + r * src_ld + c0;                                                           \
                T *d = dst + r * dst_ld + c0;                                                                 \
                for (int64_t c = 0; c < n; c++) d[c] = m[c] ? s[c] : (T)0;                                    \
            }                                                                                                 \
        }                                                                                                     \
}                                                                                                             \
                                                                                                              \
/* h (rows, units) = the largest of each unit's pieces; pre (rows, pieces * units), piece-major in a row. */   \
void maxout_##SUF(const T *pre, int64_t pre_ld, T *h, int64_t h_ld, int64_t rows, int64_t pieces,             \
                  int64_t units) {                                                                            \
    _Pragma("omp parallel for schedule(static) if (rows * pieces * units >= PARALLEL_MIN)")                   \
    for (int64_t r = 0; r < rows; r++) {                                                                      \
        const T *p = pre + r * pre_ld;                                                                        \
        T *o = h + r * h_ld;                                                                                  \
        for (int64_t u = 0; u < units; u++) o[u] = p[u];                                                      \
        for (int64_t q = 1; q < pieces; q++)                                                                  \
            for (int64_t u = 0; u < units; u++)                                                               \
                o[u] = TO_FLOAT(p[q * units + u]) > TO_FLOAT(o[u]) ? p[q * units + u] : o[u];                 \
    }                                                                                                         \
}                                                                                                             \
                                                                                                              \
/* gpre (rows, pieces * units): the gradient w.r.t. the maxout output, gin (rows, units), masked by the next  \
 * layer's dropout mask (NULL: none), goes to every piece equal to its unit's maximum, 0 to the others. */    \
void maxout_grad_##SUF(const T *pre, int64_t pre_ld, const T *gin, int64_t gin_ld, const uint8_t *mask,       \
                       T *gpre, int64_t gpre_ld, int64_t rows, int64_t pieces, int64_t units) {               \
    _Pragma("omp parallel for schedule(static) if (rows * pieces * units >= PARALLEL_MIN)")                   \
    for (int64_t r = 0; r < rows; r++)                                                                        \
        for (int64_t u0 = 0; u0 < units; u0 += BLOCK) {                                                       \
            int64_t n = units - u0 < BLOCK ? units - u0 : BLOCK;                                              \
            const T *p = pre + r * pre_ld + u0, *g = gin + r * gin_ld + u0;                                   \
            const uint8_t *m = mask ? mask + r * units + u0 : 0;                                              \
            T *o = gpre + r * gpre_ld + u0;                                                                   \
            float best[BLOCK];                                                                                \
            T through[BLOCK];                                                                                 \
            for (int64_t u = 0; u < n; u++) {                                                                 \
                best[u] = TO_FLOAT(p[u]);                                                                     \
                through[u] = (m && !m[u]) ? (T)0 : g[u];                                                      \
            }                                                                                                 \
            for (int64_t q = 1; q < pieces; q++)                                                              \
                for (int64_t u = 0; u < n; u++) {                                                             \
                    float x = TO_FLOAT(p[q * units + u]);                                                     \
                    best[u] = x > best[u] ? x : best[u];                                                      \
                }                                                                                             \
            for (int64_t q = 0; q < pieces; q++)                                                              \
                for (int64_t u = 0; u < n; u++)                                                               \
                    o[q * units + u] = TO_FLOAT(p[q * units + u]) >= best[u] ? through[u] : (T)0;             \
        }                                                                                                     \
}                                                                                                             \
                                                                                                              \
/* g (rows, cols) = 0 where mask (rows, cols) is 0: the gradient through a dropout. */                        \
void mask_grad_##SUF(T *g, int64_t g_ld, const uint8_t *mask, int64_t rows, int64_t cols) {                   \
    _Pragma("omp parallel for schedule(static) if (rows * cols >= PARALLEL_MIN)")                             \
    for (int64_t r = 0; r < rows; r++) {                                                                      \
        T *x = g + r * g_ld;                                                                                  \
        const uint8_t *m = mask + r * cols;                                                                   \
        for (int64_t c = 0; c < cols; c++) x[c] = m[c] ? x[c] : (T)0;                                         \
    }                                                                                                         \
}

DEFINE_KERNELS(float, f32, from_f32)
DEFINE_KERNELS(uint16_t, bf16, from_bf16)

/* The losses' heads (fp32 logits in, fp32 gradients out), on one thread: 2m numbers. softplus and sigmoid as
 * torch computes them (softplus(x) = x past 20). */
static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* D: logits (2m, row stride ld), the m real rows first. dl = (p - y) / (2m) with p = sigmoid(l), y = 1 for the
 * real rows; stats (2, 2) += [[mean softplus(-l), mean p] over the real rows, [mean softplus(l), mean p] over
 * the fake ones]. */
void d_head(const float *logits, int64_t ld, int64_t m, float *dl, float *stats) {
    double sums[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < 2 * m; i++) {
        float l = logits[i * ld], p = sigmoid(l);
        int real = i < m;
        sums[real ? 0 : 2] += softplus(real ? -l : l);
        sums[real ? 1 : 3] += p;
        dl[i] = (p - (real ? 1.0f : 0.0f)) * (0.5f / (float)m);
    }
    for (int k = 0; k < 4; k++) stats[k] += (float)(sums[k] / (double)m);
}

/* G: logits (m, row stride ld) of G's samples. Non-saturating G minimises -log D: dl = (p - 1) / m,
 * stats[0] += mean softplus(-l); else G minimises log(1 - D): dl = -p / m, stats[0] -= mean softplus(l). */
void g_head(const float *logits, int64_t ld, int64_t m, int non_saturating, float *dl, float *stats) {
    double sum = 0;
    for (int64_t i = 0; i < m; i++) {
        float l = logits[i * ld], p = sigmoid(l);
        sum += softplus(non_saturating ? -l : l);
        dl[i] = (non_saturating ? p - 1.0f : -p) / (float)m;
    }
    stats[0] += (float)((non_saturating ? sum : -sum) / (double)m);
}

/* fp32 -> bf16, rounding to nearest even (as torch does; NaN stays NaN). */
static inline uint16_t to_bf16(float x) {
    union { float f; uint32_t u; } v = { x };
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

/* The bf16 path's momentum update of one layer in one pass (worker/training/optim.py's Momentum holds
 * inc = s * u): u = beta * u + c * grad (beta 0 or 1; grad the bf16 product), theta += s * u, and the bf16
 * copy the next products read = bf16(theta). */
void momentum_bf16(float *theta, int64_t theta_ld, float *u, int64_t u_ld, const uint16_t *grad, int64_t grad_ld,
                   uint16_t *copy, int64_t copy_ld, int64_t rows, int64_t cols, int beta, float c, float s) {
    _Pragma("omp parallel for schedule(static) if (rows * cols >= PARALLEL_MIN)")
    for (int64_t r = 0; r < rows; r++) {
        float *t = theta + r * theta_ld, *v = u + r * u_ld;
        const uint16_t *g = grad + r * grad_ld;
        uint16_t *w = copy + r * copy_ld;
        for (int64_t k = 0; k < cols; k++) {
            float n = (beta ? v[k] : 0.0f) + c * from_bf16(g[k]);
            v[k] = n;
            t[k] += s * n;
            w[k] = to_bf16(t[k]);
        }
    }
}
