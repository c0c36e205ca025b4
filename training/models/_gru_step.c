/* char-gru's decoding step in C: fp16 weights, fp32 arithmetic, OpenMP over output columns.
 *
 * Why: serving one caption is a chain of ~45 dependent steps of B=1, and each step must
 * read every recurrent weight once. In float32 through NumPy/OpenBLAS that is 5.3 MB per step
 * streamed from L3 (~0.3 ms); in float16, split over two cores, each core reads 1.3 MB
 * (training/models/gru_kernel.py loads this file with ctypes; docs/ENGINE.md).
 *
 * Every row's result is computed by the same sequence of operations whatever the batch size
 * and whichever thread runs it (threads split columns, never the k sum), so batched decoding
 * gives bit-identical logits to unbatched decoding.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

typedef _Float16 half;
typedef float v16 __attribute__((vector_size(64)));

#if defined(__AVX512F__)
#include <immintrin.h>
static inline v16 load_h(const half *p) {
    return (v16)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
#elif defined(__F16C__)
#include <immintrin.h>
static inline v16 load_h(const half *p) {
    __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8)));
    v16 v;
    memcpy(&v, &lo, sizeof lo);
    memcpy((char *)&v + sizeof lo, &hi, sizeof hi);
    return v;
}
#else
static inline v16 load_h(const half *p) {
    v16 v;
    for (int i = 0; i < 16; i++) v[i] = (float)p[i];
    return v;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/* GCC 12 spills the two weight vectors to the stack inside the 8-row tile (16 extra loads
 * per k, ~20% slower at 64 rows); an empty asm that "modifies" them keeps them in registers. */
#define KEEP_IN_REGISTERS(a, b) __asm__("" : "+v"(a), "+v"(b))
#else
#define KEEP_IN_REGISTERS(a, b) ((void)0)
#endif

/* y[b0+t, j:j+32] = bias + x[b0+t, :] @ P for t < nb; P is one packed panel [K][32].
 * Inlined with a constant nb, so the 2*nb accumulators live in registers. */
static inline __attribute__((always_inline)) void tile(const half *P, const v16 *bias,
                                                     const float *x, float *y, int b0, int nb,
                                                     int K, int ldy, int j) {
    v16 lo[8], hi[8];
    for (int t = 0; t < nb; t++) lo[t] = bias[0], hi[t] = bias[1];
    const float *xr = x + (size_t)b0 * K;
    for (int k = 0; k < K; k++) {
        v16 w0 = load_h(P + (size_t)k * 32), w1 = load_h(P + (size_t)k * 32 + 16);
        KEEP_IN_REGISTERS(w0, w1);
        for (int t = 0; t < nb; t++) {
            float xv = xr[(size_t)t * K + k];
            lo[t] += xv * w0;
            hi[t] += xv * w1;
        }
    }
    for (int t = 0; t < nb; t++) {
        memcpy(y + (size_t)(b0 + t) * ldy + j, &lo[t], sizeof(v16));
        memcpy(y + (size_t)(b0 + t) * ldy + j + 16, &hi[t], sizeof(v16));
    }
}

/* y[B, N] = x[B, K] @ W[K, N] + bias[N], W packed as N/32 panels of [K][32] (N % 32 == 0,
 * each panel contiguous). Called inside a parallel region: the panels are shared out between
 * the threads. */
static void matmul(const half *W, const float *bias, const float *x, float *y, int B, int K,
                   int N) {
    int nblk = N / 32;
#pragma omp for schedule(static)
    for (int jb = 0; jb < nblk; jb++) {
        const half *P = W + (size_t)jb * K * 32;
        v16 bv[2];
        memcpy(bv, bias + (size_t)jb * 32, sizeof bv);
        int b0 = 0;
        for (; b0 + 8 <= B; b0 += 8) tile(P, bv, x, y, b0, 8, K, N, jb * 32);
        if (b0 + 4 <= B) {
            tile(P, bv, x, y, b0, 4, K, N, jb * 32);
            b0 += 4;
        }
        for (; b0 < B; b0++) tile(P, bv, x, y, b0, 1, K, N, jb * 32);
    }
}

/* A loaded model's shapes and weights (filled in by gru_kernel.py; the arrays stay owned by
 * Python). G >= 3H is 3H rounded up to a multiple of 32 (the gates sit at 0, H, 2H of each
 * row) and Vp the vocabulary rounded up likewise. */
typedef struct {
    int layers, hidden, G, Vp, threads; /* threads <= 0: OpenMP's default */
    const half *const *wx;              /* [L] -> [H, G] packed input kernels (wx[0] unused) */
    const half *const *wh;              /* [L] -> [H, G] packed recurrent kernels */
    const float *bx, *bh;               /* [L, G] input and recurrent biases */
    const half *wo;                     /* [H, Vp] packed output kernel */
    const float *bo;                    /* [Vp] */
} gru_model;

/* One step of the stacked GRU layers (Keras, reset_after) over B rows, then the logits.
 * state: [L, B, H], the hidden states before the step. arena, one buffer per step:
 *   out [L, B, H] (states after) | xin [B, G] (layer 0's input projection, its input bias
 *   included; filled by the caller) | logits [B, Vp] | scratch [2, B, G]. */
void memebot_gru_step(const gru_model *m, int B, const float *state, float *arena) {
    const int L = m->layers, H = m->hidden, G = m->G, Vp = m->Vp;
    float *out = arena, *xin = out + (size_t)L * B * H, *logits = xin + (size_t)B * G;
    float *xp = logits + (size_t)B * Vp, *hp = xp + (size_t)B * G;
    int threads = m->threads;
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_max_threads();
#else
    threads = 1;
#endif
#pragma omp parallel num_threads(threads)
    {
        for (int i = 0; i < L; i++) {
            const float *h = state + (size_t)i * B * H;
            float *hn = out + (size_t)i * B * H;
            const float *xs = xin;
            if (i > 0) {
                matmul(m->wx[i], m->bx + (size_t)i * G, out + (size_t)(i - 1) * B * H, xp, B,
                       H, G);
                xs = xp;
            }
            matmul(m->wh[i], m->bh + (size_t)i * G, h, hp, B, H, G);
            /* (implicit barrier: every column of xp and hp is written) */
#pragma omp for schedule(static)
            for (int b = 0; b < B; b++) {
                const float *xr = xs + (size_t)b * G, *hr = hp + (size_t)b * G;
                const float *h0 = h + (size_t)b * H;
                float *o = hn + (size_t)b * H;
#pragma omp simd
                for (int k = 0; k < H; k++) {
                    float z = 1.f / (1.f + expf(-(xr[k] + hr[k])));
                    float r = 1.f / (1.f + expf(-(xr[H + k] + hr[H + k])));
                    float n = tanhf(xr[2 * H + k] + r * hr[2 * H + k]);
                    o[k] = n + z * (h0[k] - n);
                }
            }
        }
        matmul(m->wo, m->bo, out + (size_t)(L - 1) * B * H, logits, B, H, Vp);
    }
}
