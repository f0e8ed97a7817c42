/* conv2d.c: direct 3x3 fp32 convolution shaped like ResNet-18 layer C9
 * (input 1x256x14x14, weights 256x256x3x3, stride 1, "same" zero padding, NCHW, batch 1).
 *
 * The kernel is a plain loop nest with no intrinsics or manual vectorisation, so that the
 * compiler flags being tuned decide how fast it runs.  Inputs come from a fixed LCG, so the
 * output is the same on every run and (without -ffast-math / FMA contraction) at every -O level.
 *
 * Arguments (all optional, for quick tests):  --h H  --w W  --c C  --k K
 *   H, W: input height/width (default 14, W defaults to H); C: input channels (256);
 *   K: output channels (256).  `--size N` is accepted as an alias of `--h N`.
 */
#include "../tune_harness.h"

#define KS 3 /* kernel size */
#define PAD 1

static int H = 14, W = -1, C = 256, K = 256;
static float *in, *wt, *bias, *out;

static uint32_t lcg_state = 12345u;
static float lcg_uniform(void) { /* in [-1, 1), exactly representable steps of 2^-23 */
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return (float)(lcg_state >> 8) * (1.0f / 8388608.0f) - 1.0f;
}

static int parse_pos_int(const char *name, const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 4096) {
        fprintf(stderr, "conv2d: bad value for %s: %s\n", name, s);
        exit(2);
    }
    return (int)v;
}

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "conv2d: out of memory\n"); exit(2); }
    return p;
}

void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) { fprintf(stderr, "conv2d: %s needs a value\n", a); exit(2); }
        if (!strcmp(a, "--h") || !strcmp(a, "--size")) H = parse_pos_int(a, argv[++i]);
        else if (!strcmp(a, "--w")) W = parse_pos_int(a, argv[++i]);
        else if (!strcmp(a, "--c")) C = parse_pos_int(a, argv[++i]);
        else if (!strcmp(a, "--k")) K = parse_pos_int(a, argv[++i]);
        else { fprintf(stderr, "conv2d: unknown argument %s\n", a); exit(2); }
    }
    if (W < 0) W = H;
    in = xmalloc(sizeof(float) * (size_t)C * H * W);
    wt = xmalloc(sizeof(float) * (size_t)K * C * KS * KS);
    bias = xmalloc(sizeof(float) * (size_t)K);
    out = xmalloc(sizeof(float) * (size_t)K * H * W);
    for (size_t i = 0; i < (size_t)C * H * W; i++) in[i] = lcg_uniform();
    /* scale weights like a He-initialised layer so sums stay O(1) */
    float scale = 1.0f / 64.0f;
    for (size_t i = 0; i < (size_t)K * C * KS * KS; i++) wt[i] = lcg_uniform() * scale;
    for (int k = 0; k < K; k++) bias[k] = lcg_uniform() * 0.1f;
    memset(out, 0, sizeof(float) * (size_t)K * H * W);
}

void tune_kernel(void) {
    const int h_ = H, w_ = W, c_ = C, k_ = K;
    const float *restrict x = in;
    const float *restrict f = wt;
    float *restrict y = out;
    for (int k = 0; k < k_; k++) {
        for (int i = 0; i < h_ * w_; i++) y[(size_t)k * h_ * w_ + i] = bias[k];
        for (int c = 0; c < c_; c++) {
            const float *xc = x + (size_t)c * h_ * w_;
            const float *fk = f + ((size_t)k * c_ + c) * KS * KS;
            float *yk = y + (size_t)k * h_ * w_;
            for (int r = 0; r < KS; r++) {
                /* output rows whose input row oh + r - PAD lies inside the image */
                const int oh_lo = r < PAD ? PAD - r : 0;
                const int oh_hi = h_ + PAD - r < h_ ? h_ + PAD - r : h_;
                for (int s = 0; s < KS; s++) {
                    const float wv = fk[r * KS + s];
                    const int ow_lo = s < PAD ? PAD - s : 0;
                    const int ow_hi = w_ + PAD - s < w_ ? w_ + PAD - s : w_;
                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        const float *xr = xc + (oh + r - PAD) * w_ + (s - PAD);
                        float *yr = yk + oh * w_;
                        for (int ow = ow_lo; ow < ow_hi; ow++)
                            yr[ow] += wv * xr[ow];
                    }
                }
            }
        }
    }
}

const void *tune_output(size_t *nbytes) {
    *nbytes = sizeof(float) * (size_t)K * H * W;
    return out;
}

void tune_finish(void) {
    tune_metric("gflop", 2.0 * K * C * KS * KS * (double)H * W * 1e-9);
}
