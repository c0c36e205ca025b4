/* A server's taste tilting decoding, one step of a batch (engine/decoding/tilt_kernel.py).

   The same grams, hashes and state as tilt.py's NumPy code, which stays the reference (and the
   path where this file could not be compiled): tests/test_engine_decoding_tilt_kernel.py holds
   the two equal. A tilted step is a few hundred small NumPy calls there; here it is one loop
   over the candidates each row's method can draw.

   A row's state (int64 [WIDTH]): the last 4 bytes of the normalised text (oldest first, -1:
   none), the hashes of the current and previous word, flags. Hash constants come from Python
   (memebot/ngrams.py), so the two can never disagree on them. */

#include <stdint.h>

enum { LAST = 0, CUR = 4, PREV = 5, FLAGS = 6, WIDTH = 7 };
enum { IN_WORD = 1, PENDING = 2 };
enum { PIPE = '|', SPACE = ' ', QUOTE = '\'' };
enum { MAX_GRAMS = 10 }; /* 3 char n-grams, the held-back space's 3, a word's 2, `|`'s 2 */

typedef struct {
    uint64_t p;       /* the polynomial hash's base */
    uint64_t salt[3]; /* character 3-, 4-, 5-grams */
    uint64_t uni, bi; /* word unigrams, bigrams */
    uint64_t m1, m2;  /* splitmix64's finaliser */
} tilt_consts;

static inline uint64_t mix(const tilt_consts *k, uint64_t z) {
    z ^= z >> 30;
    z *= k->m1;
    z ^= z >> 27;
    z *= k->m2;
    return z ^ (z >> 31);
}

static inline int is_word(int64_t b) {
    return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == QUOTE;
}

/* The hash of the last j bytes of window w[4]; *ok: whether it has that many. */
static inline uint64_t tail(const tilt_consts *k, const int64_t *w, int j, int *ok) {
    uint64_t h = 0;
    for (int i = 4 - j; i < 4; i++) h = h * k->p + (uint64_t)(w[i] + 1);
    *ok = w[4 - j] >= 0;
    return h;
}

/* The salted hashes of the grams byte c completes after state s (tilt.grams): how many. */
static int grams(const tilt_consts *k, const int64_t *s, int64_t c, uint64_t *out) {
    if (c < 0) return 0;
    const int64_t *last = s + LAST;
    int in_word = (s[FLAGS] & IN_WORD) != 0, pending = (s[FLAGS] & PENDING) != 0;
    uint64_t cur = (uint64_t)s[CUR], prev = (uint64_t)s[PREV];
    int pipe = c == PIPE, space = c == SPACE;
    /* the held-back space is committed before any character but a `|` (and another space) */
    int with_space = pending && !pipe && !space;
    int64_t spaced[4] = {last[1], last[2], last[3], SPACE};
    int n_out = 0;
    for (int n = 3; n <= 5; n++) {
        int v, vs;
        uint64_t h = tail(k, last, n - 1, &v), hs = tail(k, spaced, n - 1, &vs);
        uint64_t salt = k->salt[n - 3];
        if (v && with_space) out[n_out++] = (h * k->p + (uint64_t)(SPACE + 1)) ^ salt;
        if (!space && (with_space ? vs : v))
            out[n_out++] = ((with_space ? hs : h) * k->p + (uint64_t)(c + 1)) ^ salt;
    }
    if (in_word && !is_word(c)) { /* the current word ends here */
        out[n_out++] = cur ^ k->uni;
        out[n_out++] = ((prev * k->p) ^ cur) ^ k->bi;
    }
    if (pipe) {
        uint64_t word = (uint64_t)(PIPE + 1), before = in_word ? cur : prev;
        out[n_out++] = word ^ k->uni;
        out[n_out++] = ((before * k->p) ^ word) ^ k->bi;
    }
    return n_out;
}

/* State s after byte c (tilt.append). */
static void append(const tilt_consts *k, int64_t *s, int64_t c) {
    int64_t *last = s + LAST;
    int in_word = (s[FLAGS] & IN_WORD) != 0, pending = (s[FLAGS] & PENDING) != 0;
    uint64_t cur = (uint64_t)s[CUR], prev = (uint64_t)s[PREV];
    int pipe = c == PIPE, space = c == SPACE, word = is_word(c);
    int dropped = space && (pending || last[3] == PIPE); /* collapsed, or beside a `|` */
    if (in_word && !word) prev = cur;
    if (pipe) prev = (uint64_t)(PIPE + 1);
    if (pending && !pipe && !space) { /* the held-back space is written first */
        last[0] = last[1], last[1] = last[2], last[2] = last[3], last[3] = SPACE;
    }
    if (!space) last[0] = last[1], last[1] = last[2], last[2] = last[3], last[3] = c;
    cur = word ? (in_word ? cur : 0) * k->p + (uint64_t)(c + 1) : 0;
    int held = (space && !dropped) || (pending && space);
    s[CUR] = (int64_t)cur;
    s[PREV] = (int64_t)prev;
    s[FLAGS] = (word ? IN_WORD : 0) | (held ? PENDING : 0);
}

/* For n tilted rows: out[o[i], j] = strength[slot] * (the weights of the grams candidate j
   completes, each paid once per caption), for every candidate j with a byte whose lp[i, j]
   reaches thr[i] (end_id skipped where forbid[i]); other cells untouched.
   lp [n, V]; rows[i]: the row's index into states [*, WIDTH], slots and seen [*, seen_w];
   table [n_slots, width]; masks, strength [n_slots]; out [*, V]. */
void memebot_tilt_weigh(const tilt_consts *k, int64_t n, int64_t V, const double *lp,
                        const double *thr, const uint8_t *forbid, int64_t end_id,
                        const int64_t *cand, const int64_t *rows, const int64_t *o,
                        const int64_t *states, const int64_t *slots, const uint64_t *masks,
                        const float *strength, const float *table, int64_t width,
                        const uint8_t *seen, int64_t seen_w, double *out) {
    uint64_t h[MAX_GRAMS];
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rows[i], slot = slots[r];
        const int64_t *s = states + r * WIDTH;
        const float *w = table + slot * width;
        const uint8_t *paid = seen + r * seen_w;
        const double *row_lp = lp + i * V;
        double *row_out = out + o[i] * V;
        for (int64_t j = 0; j < V; j++) {
            if (cand[j] < 0 || row_lp[j] < thr[i] || (forbid[i] && j == end_id)) continue;
            int m = grams(k, s, cand[j], h);
            float total = 0.0f;
            for (int g = 0; g < m; g++) {
                uint64_t b = mix(k, h[g]) & masks[slot];
                float x = w[b];
                if (!(x > 0.0f && paid[b])) total += x;
            }
            row_out[j] = (double)(strength[slot] * total);
        }
    }
}

/* For n tilted rows after their picked bytes c[i] (each >= 0): mark the buckets each
   completes in seen (tilt.mark), then move the state on (tilt.append). */
void memebot_tilt_follow(const tilt_consts *k, int64_t n, const int64_t *rows, const int64_t *c,
                         int64_t *states, const int64_t *slots, const uint64_t *masks,
                         uint8_t *seen, int64_t seen_w) {
    uint64_t h[MAX_GRAMS];
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rows[i];
        int64_t *s = states + r * WIDTH;
        int m = grams(k, s, c[i], h);
        for (int g = 0; g < m; g++) seen[r * seen_w + (mix(k, h[g]) & masks[slots[r]])] = 1;
        append(k, s, c[i]);
    }
}
