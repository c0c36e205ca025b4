/* char-gru's decoding step in C: fp16 weights, fp32 arithmetic, OpenMP over hidden units.
 *
 * Why: serving one caption is a chain of ~45 dependent steps of B=1, and each step must
 * read every recurrent weight once. In float32 through NumPy/OpenBLAS that is 5.3 MB per step
 * streamed from L3 (~0.3 ms); in float16, split over two cores, each core reads 1.3 MB
 * (engine/decoding/gru_kernel.py loads this file with ctypes; docs/ENGINE.md). Each thread
 * takes whole blocks of 16 hidden units, computes their z, r and n projections and then their
 * gates, so a layer needs one barrier (a lone row's step: ~0.035 ms, against ~0.065 ms with a
 * barrier between the projections and the gates).
 *
 * Every row's result is computed by the same sequence of operations whatever the batch size
 * and whichever thread runs it (threads split columns, never the k sum), so batched decoding
 * gives bit-identical logits to unbatched decoding.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
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
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
/* AVX2 (+F16C, FMA): 16 ymm registers of 8 floats. The v16 tiles would be two ymm halves each,
 * which GCC keeps on the stack (2x slower than the NumPy step on a Zen 3 VM, ~10x on Zen 4), so
 * this build has tiles of its own, written for ymm registers (narrow_tile); no v16 on this path. */
#include <immintrin.h>
#define NARROW_TILES 1
static inline __m256 load8_h(const half *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
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

#if defined(__x86_64__) && defined(__GNUC__) && defined(__AVX512F__)
/* GCC 12 spills the two weight vectors to the stack inside the 8-row tile (16 extra loads
 * per k, ~20% slower at 64 rows); an empty asm that "modifies" them keeps them in registers.
 * Only with AVX-512: there a v16 is one zmm register; elsewhere it is two halves, which no "v"
 * operand can name (GCC: "impossible constraint in asm"). (AVX2 builds use narrow_tile.) */
#define KEEP_IN_REGISTERS(a, b) __asm__("" : "+v"(a), "+v"(b))
#else
#define KEEP_IN_REGISTERS(a, b) ((void)0)
#endif

#ifdef NARROW_TILES
/* out[t*ldo + c] = bias[c] + x[t, :] @ P[:, c] for t < NR, c < 8*NV; P's rows are ldp halves
 * apart, x's rows K floats apart. Inlined with constant NR and NV: the NR*NV accumulators, NV
 * weight vectors and one broadcast x fit the 16 ymm registers (1x6: 13, 4x3: 16, 4x2: 11; GCC 12
 * keeps them all in registers, no stack access in the k loop).
 * Every column is bias, then one FMA per k in k order, whichever tile computes it: a row's
 * result does not depend on the batch it is in. */
static inline __attribute__((always_inline)) void narrow_tile(const half *P, int ldp,
                                                            const float *bias, const float *x,
                                                            int K, float *out, int ldo,
                                                            const int NR, const int NV) {
    __m256 acc[4][6];
    for (int t = 0; t < NR; t++)
        for (int v = 0; v < NV; v++) acc[t][v] = _mm256_loadu_ps(bias + 8 * v);
    for (int k = 0; k < K; k++) {
        const half *w = P + (size_t)k * ldp;
        __m256 wv[6];
        for (int v = 0; v < NV; v++) wv[v] = load8_h(w + 8 * v);
        for (int t = 0; t < NR; t++) {
            const __m256 xv = _mm256_broadcast_ss(x + (size_t)t * K + k);
            for (int v = 0; v < NV; v++) acc[t][v] = _mm256_fmadd_ps(xv, wv[v], acc[t][v]);
        }
    }
    for (int t = 0; t < NR; t++)
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(out + (size_t)t * ldo + 8 * v, acc[t][v]);
}

/* out[t*ldo + c] = bias[c] + x[t, :] @ P[:, c] for t < nb, c < C (C = 32 or 48; P one packed
 * panel [K][C]). A lone row at the panel's full width (C/8 independent sums: a lone row is
 * bound by the FMA latency, so as many as fit); 4 rows at a time in slices of 24 columns (16
 * for C = 32), a slice staying in L1 while the row groups pass over it. At 64 rows, one
 * thread (Zen 4, AVX2 build, one interleaved run): 4x3 slices 1.80 ms a step, 4x2 2.22, 4x1
 * 3.54. */
static inline __attribute__((always_inline)) void narrow_panel(const half *P, const int C,
                                                             const float *bias, const float *x,
                                                             int K, float *out, int ldo,
                                                             int nb) {
    const int n4 = nb / 4 * 4, NV = C % 24 ? 2 : 3;
    for (int c = 0; c < C && n4; c += 8 * NV)
        for (int t = 0; t < n4; t += 4)
            narrow_tile(P + c, C, bias + c, x + (size_t)t * K, K, out + (size_t)t * ldo + c,
                        ldo, 4, NV);
    for (int t = n4; t < nb; t++)
        narrow_tile(P, C, bias, x + (size_t)t * K, K, out + (size_t)t * ldo, ldo, 1, C / 8);
}
#else

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
#endif

/* y[B, N] = x[B, K] @ W[K, N] + bias[N], W packed as N/32 panels of [K][32] (N % 32 == 0,
 * each panel contiguous). Called inside a parallel region: the panels are shared out between
 * the threads. */
static void matmul(const half *W, const float *bias, const float *x, float *y, int B, int K,
                   int N) {
    int nblk = N / 32;
#ifdef NARROW_TILES
#pragma omp for schedule(static)
    for (int jb = 0; jb < nblk; jb++)
        narrow_panel(W + (size_t)jb * K * 32, 32, bias + jb * 32, x, K, y + jb * 32, N, B);
#else
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
#endif
}

/* acc[t] = bias + x[b0+t, :] @ P for t < nb, 48 columns (3 vectors); P one packed panel
 * [K][48]. The three weight vectors stay in registers without help here. */
static inline __attribute__((always_inline)) void tile48(const half *P, const float *bias,
                                                       const float *x, float *out, int b0,
                                                       int nb, int K) {
#ifdef NARROW_TILES
    narrow_panel(P, 48, bias, x + (size_t)b0 * K, K, out, 48, nb);
#else
    v16 a[8], b[8], c[8];
    v16 b0v, b1v, b2v;
    memcpy(&b0v, bias, 64);
    memcpy(&b1v, bias + 16, 64);
    memcpy(&b2v, bias + 32, 64);
    for (int t = 0; t < nb; t++) a[t] = b0v, b[t] = b1v, c[t] = b2v;
    const float *xr = x + (size_t)b0 * K;
    for (int k = 0; k < K; k++) {
        const half *w = P + (size_t)k * 48;
        v16 w0 = load_h(w), w1 = load_h(w + 16), w2 = load_h(w + 32);
        for (int t = 0; t < nb; t++) {
            float xv = xr[(size_t)t * K + k];
            a[t] += xv * w0;
            b[t] += xv * w1;
            c[t] += xv * w2;
        }
    }
    for (int t = 0; t < nb; t++) {
        memcpy(out + t * 48, &a[t], 64);
        memcpy(out + t * 48 + 16, &b[t], 64);
        memcpy(out + t * 48 + 32, &c[t], 64);
    }
#endif
}

/* One GRU layer (Keras, reset_after) for rows b0..b0+nb-1 and hidden units 16*jb..16*jb+15:
 * both projections of those units, then their gates, written to hn. xs: the layer's input
 * [B, Kx] (wx != NULL) or its precomputed input projection [B, 3Hp] in block order. */
static inline __attribute__((always_inline)) void unit_block(
    const half *wx, const float *bx, const float *xs, int Kx, const half *wh, const float *bh,
    const float *h, float *hn, int b0, int nb, int Hp, int jb) {
    float xp[8 * 48], hp[8 * 48];
    if (wx)
        tile48(wx, bx, xs, xp, b0, nb, Kx);
    else
        for (int t = 0; t < nb; t++)
            memcpy(xp + t * 48, xs + (size_t)(b0 + t) * 3 * Hp + jb * 48, 48 * sizeof(float));
    tile48(wh, bh, h, hp, b0, nb, Hp);
    for (int t = 0; t < nb; t++) {
        const float *xr = xp + t * 48, *hr = hp + t * 48;
        const float *h0 = h + (size_t)(b0 + t) * Hp + jb * 16;
        float *o = hn + (size_t)(b0 + t) * Hp + jb * 16;
#pragma omp simd
        for (int k = 0; k < 16; k++) {
            float z = 1.f / (1.f + expf(-(xr[k] + hr[k])));
            float r = 1.f / (1.f + expf(-(xr[16 + k] + hr[16 + k])));
            float n = tanhf(xr[32 + k] + r * hr[32 + k]);
            o[k] = n + z * (h0[k] - n);
        }
    }
}

/* A loaded model's shapes and weights (filled in by gru_kernel.py; the arrays stay owned by
 * Python). Hidden units are padded to Hp (a multiple of 16) with all-zero weights, which keeps
 * a padded unit at 0. The GRU kernels are packed by unit block: block jb holds the z, r and n
 * columns of units 16*jb..16*jb+15 as one panel [K][48], so the thread that computes a block's
 * projections also finishes its gates (one barrier per layer). Vp is the vocabulary rounded up
 * to 32 (the output kernel uses 32-column panels). */
typedef struct {
    int layers, hidden, G, Vp, threads; /* hidden = Hp, G = 3 * Hp; threads <= 0: default */
    int vocab, max_boxes;               /* V; box indices >= max_boxes share the last */
    int64_t n_inputs, n_slots;          /* rows of the two input tables */
    const float *char_box_in;           /* [n_inputs, G] layer 0's input projection of
                                           (char, box), input bias included, block order */
    const float *template_in;           /* [n_slots, G] and of the template slot */
    const half *const *wx;              /* [L] -> [nblk][Hp][48] input kernels (wx[0] unused) */
    const half *const *wh;              /* [L] -> [nblk][Hp][48] recurrent kernels */
    const float *bx, *bh;               /* [L, G] input and recurrent biases, block order */
    const half *wo;                     /* [Hp, Vp] packed output kernel (32-column panels) */
    const float *bo;                    /* [Vp] */
} gru_model;

/* One step of the stacked GRU layers over B rows, then log-probabilities.
 * chars, boxes, slots: [B] ids fed, their box indices, conditioning slots.
 * state: [L, B, Hp], the hidden states before the step. arena, one buffer per step:
 *   out [L, B, Hp] (states after) | xin [B, G] (scratch) | logp [B, Vp]: log-softmax over
 *   the V ids (the caller masks the special ids: -ffast-math assumes no infinities here).
 * Returns 0, or -1 (nothing computed) if an id is outside its table. */
/* 1 when built with the AVX-512 path (64-byte tiles, one zmm register each). */
int memebot_gru_wide(void) {
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

/* The width in bits of the registers the kernel's tiles are written for: 512 (AVX-512), 256
 * (AVX2 + F16C + FMA: narrow_tile), or 0 (a v16 split in halves or a scalar loop: slower than
 * the NumPy step). gru_kernel.preferred() takes the kernel for 256 and 512. */
int memebot_gru_tile_bits(void) {
#if defined(__AVX512F__)
    return 512;
#elif defined(NARROW_TILES)
    return 256;
#else
    return 0;
#endif
}

/* Rows from which a step splits its work over threads (bench/kernel_contention.py: with
 * passive waiting two threads are slower than one below ~8-16 rows, faster above). */
#define PARALLEL_ROWS 16

int memebot_gru_step(const gru_model *m, int B, const int64_t *chars, const int64_t *boxes,
                     const int64_t *slots, const float *state, float *arena) {
    const int L = m->layers, Hp = m->hidden, G = m->G, Vp = m->Vp, nblk = Hp / 16;
    float *out = arena, *xin = out + (size_t)L * B * Hp, *logits = xin + (size_t)B * G;
    for (int b = 0; b < B; b++) {
        int64_t box = boxes[b] < m->max_boxes ? boxes[b] : m->max_boxes - 1;
        int64_t row = chars[b] * m->max_boxes + box;
        if (chars[b] < 0 || box < 0 || row >= m->n_inputs || slots[b] < 0 || slots[b] >= m->n_slots)
            return -1;
        const float *cb = m->char_box_in + (size_t)row * G, *tp = m->template_in + (size_t)slots[b] * G;
        float *x = xin + (size_t)b * G;
#pragma omp simd
        for (int k = 0; k < G; k++) x[k] = cb[k] + tp[k];
    }
    int threads = m->threads;
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    /* A small batch runs on one thread: its barriers (a futex wake-up each, since the engine's
     * threads sleep while they wait: gru_kernel.py) cost more than the work they would split. */
    if (B < PARALLEL_ROWS) threads = 1;
#pragma omp parallel num_threads(threads)
    {
        for (int i = 0; i < L; i++) {
            const float *h = state + (size_t)i * B * Hp;
            float *hn = out + (size_t)i * B * Hp;
            const half *wx = i ? m->wx[i] : NULL;
            const float *xs = i ? out + (size_t)(i - 1) * B * Hp : xin;
            const float *bx = m->bx + (size_t)i * G, *bh = m->bh + (size_t)i * G;
            /* (the implicit barrier at the end of each layer publishes hn to the next) */
#pragma omp for schedule(static)
            for (int jb = 0; jb < nblk; jb++) {
                const size_t panel = (size_t)jb * Hp * 48;
                const half *px = wx ? wx + panel : NULL, *ph = m->wh[i] + panel;
                int b0 = 0;
                for (; b0 + 8 <= B; b0 += 8)
                    unit_block(px, bx + jb * 48, xs, Hp, ph, bh + jb * 48, h, hn, b0, 8, Hp, jb);
                if (b0 + 4 <= B) {
                    unit_block(px, bx + jb * 48, xs, Hp, ph, bh + jb * 48, h, hn, b0, 4, Hp, jb);
                    b0 += 4;
                }
                for (; b0 < B; b0++)
                    unit_block(px, bx + jb * 48, xs, Hp, ph, bh + jb * 48, h, hn, b0, 1, Hp, jb);
            }
        }
        matmul(m->wo, m->bo, out + (size_t)(L - 1) * B * Hp, logits, B, Hp, Vp);
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            float *z = logits + (size_t)b * Vp, top = z[0], sum = 0.f;
            for (int v = 1; v < m->vocab; v++) top = z[v] > top ? z[v] : top;
            for (int v = 0; v < m->vocab; v++) sum += expf(z[v] - top);
            const float norm = top + logf(sum);
            for (int v = 0; v < m->vocab; v++) z[v] -= norm;
        }
    }
    return 0;
}
