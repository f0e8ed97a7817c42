/* mobilenet_block.c: one MobileNet-v1 depthwise-separable block, batch 1, fp32, NCHW:
 *
 *     mid = ReLU(depthwise3x3(in, stride 1, pad 1) + dw_bias)      Cin x H x W
 *     out = ReLU(pointwise1x1(mid) + pw_bias)                      Cout x H x W
 *
 * (batch-norm folded into the biases). Portable C11 + OpenMP, no intrinsics: it is built
 * natively and cross-built for aarch64 (run under qemu). Shape by arguments
 *     --hw N (default 28)   --cin N (default 128)   --cout N (default 128)
 * Schedule by -D defines (any positive value; remainders are handled):
 *     TILE_H   depthwise: output rows per work item            (default 4)
 *     TILE_CO  pointwise: output channels per tile             (default 16)
 *     TILE_P   pointwise: pixels per tile (inner, vectorised)  (default 64)
 *     TILE_CI  pointwise: input channels per reduction tile    (default 32)
 * Metrics: "gflop" (work) and "gflops" (work / median kernel time, self-timed).
 * Threads: OMP_NUM_THREADS (both stages are `omp parallel for`); without -fopenmp it is serial.
 *
 * Verification: every output accumulates in a fixed order (depthwise kh, kw ascending;
 * pointwise ci ascending) with fmaf into an fp32 accumulator starting at 0.0f, then the
 * bias is added and ReLU applied. Tiles and threads do not change that order, so any build
 * without -ffast-math/-fassociative-math is bit-identical to the -O0 reference:
 * verify = "exact".
 */
#include "tune_harness.h"

#ifndef TILE_H
#define TILE_H 4
#endif
#ifndef TILE_CO
#define TILE_CO 16
#endif
#ifndef TILE_P
#define TILE_P 64
#endif
#ifndef TILE_CI
#define TILE_CI 32
#endif

static int hw_ = 28, cin_ = 128, cout_ = 128;
static float *in_, *wdw_, *bdw_, *mid_, *wpw_, *bpw_, *out_;
static double gflop_ = 0.0;

/* Self-timing for the "gflops" metric: median over the timed calls (warm-up skipped). */
#define MB_MAX_TIMED 4096
static double mb_times_[MB_MAX_TIMED];
static int mb_ntimes_ = 0;

/* Deterministic data, reproducible in numpy: flat index i of the logical array. */
static float mb_value(long i, int salt) {
    return (float)((i * 37 + salt) % 101) / 101.0f - 0.5f;
}

static float *mb_alloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static int mb_min(int a, int b) { return a < b ? a : b; }

void tune_setup(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--hw") == 0) hw_ = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cin") == 0) cin_ = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cout") == 0) cout_ = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown argument %s\n", argv[i]); exit(2); }
    }
    if (hw_ < 1 || cin_ < 1 || cout_ < 1) { fprintf(stderr, "bad shape\n"); exit(2); }
    if (TILE_H < 1 || TILE_CO < 1 || TILE_P < 1 || TILE_CI < 1) tune_infeasible("tile sizes must be >= 1");
    int hp = hw_ + 2;
    size_t plane = (size_t)hw_ * hw_;
    in_ = mb_alloc((size_t)cin_ * hp * hp);  /* zero-padded copy */
    for (int c = 0; c < cin_; c++)
        for (int y = 0; y < hw_; y++)
            for (int x = 0; x < hw_; x++)
                in_[((size_t)c * hp + y + 1) * hp + x + 1] = mb_value(((long)c * hw_ + y) * hw_ + x, 11);
    wdw_ = mb_alloc((size_t)cin_ * 9);
    for (long i = 0; i < (long)cin_ * 9; i++) wdw_[i] = mb_value(i, 29);
    bdw_ = mb_alloc((size_t)cin_);
    for (long i = 0; i < cin_; i++) bdw_[i] = 0.25f * mb_value(i, 3);
    wpw_ = mb_alloc((size_t)cout_ * cin_);
    for (long i = 0; i < (long)cout_ * cin_; i++) wpw_[i] = mb_value(i, 47);
    bpw_ = mb_alloc((size_t)cout_);
    for (long i = 0; i < cout_; i++) bpw_[i] = 0.25f * mb_value(i, 5);
    mid_ = mb_alloc((size_t)cin_ * plane);
    out_ = mb_alloc((size_t)cout_ * plane);
    gflop_ = (2.0 * 9 * cin_ + 2.0 * cin_ * cout_) * plane * 1e-9;
}

static void depthwise_relu(void) {
    const int n = hw_, hp = hw_ + 2, rows = (hw_ + TILE_H - 1) / TILE_H;
    #pragma omp parallel for schedule(static)
    for (int item = 0; item < cin_ * rows; item++) {
        const int c = item / rows, y0 = (item % rows) * TILE_H, y1 = mb_min(y0 + TILE_H, n);
        const float *ic = in_ + (size_t)c * hp * hp;
        const float *k = wdw_ + (size_t)c * 9;
        const float b = bdw_[c];
        float *oc = mid_ + (size_t)c * n * n;
        for (int y = y0; y < y1; y++) {
            const float *r0 = ic + (size_t)y * hp, *r1 = r0 + hp, *r2 = r1 + hp;
            float *o = oc + (size_t)y * n;
            for (int x = 0; x < n; x++) {
                float a = 0.0f;
                a = fmaf(r0[x], k[0], a); a = fmaf(r0[x + 1], k[1], a); a = fmaf(r0[x + 2], k[2], a);
                a = fmaf(r1[x], k[3], a); a = fmaf(r1[x + 1], k[4], a); a = fmaf(r1[x + 2], k[5], a);
                a = fmaf(r2[x], k[6], a); a = fmaf(r2[x + 1], k[7], a); a = fmaf(r2[x + 2], k[8], a);
                a = a + b;
                o[x] = a > 0.0f ? a : 0.0f;
            }
        }
    }
}

static void pointwise_relu(void) {
    const int np = hw_ * hw_;
    const int tco = (cout_ + TILE_CO - 1) / TILE_CO, tp = (np + TILE_P - 1) / TILE_P;
    #pragma omp parallel for schedule(static)
    for (int item = 0; item < tco * tp; item++) {
        const int co0 = (item / tp) * TILE_CO, co1 = mb_min(co0 + TILE_CO, cout_);
        const int p0 = (item % tp) * TILE_P, p1 = mb_min(p0 + TILE_P, np);
        for (int co = co0; co < co1; co++)
            for (int p = p0; p < p1; p++) out_[(size_t)co * np + p] = 0.0f;
        for (int ci0 = 0; ci0 < cin_; ci0 += TILE_CI) {
            const int ci1 = mb_min(ci0 + TILE_CI, cin_);
            for (int co = co0; co < co1; co++) {
                float *restrict o = out_ + (size_t)co * np;
                const float *wr = wpw_ + (size_t)co * cin_;
                for (int ci = ci0; ci < ci1; ci++) {
                    const float wv = wr[ci];
                    const float *restrict m = mid_ + (size_t)ci * np;
                    for (int p = p0; p < p1; p++) o[p] = fmaf(m[p], wv, o[p]);
                }
            }
        }
        for (int co = co0; co < co1; co++) {
            const float b = bpw_[co];
            float *o = out_ + (size_t)co * np;
            for (int p = p0; p < p1; p++) {
                const float a = o[p] + b;
                o[p] = a > 0.0f ? a : 0.0f;
            }
        }
    }
}

void tune_kernel(void) {
    double t0 = tune_now_ms_();
    depthwise_relu();
    pointwise_relu();
    if (mb_ntimes_ < MB_MAX_TIMED) mb_times_[mb_ntimes_++] = tune_now_ms_() - t0;
}

void tune_finish(void) {
    int skip = (int)tune_env_("TUNE_WARMUP", 1);
    if (skip < 0 || skip >= mb_ntimes_) skip = 0;
    int n = mb_ntimes_ - skip;
    tune_metric("gflop", gflop_);
    if (n <= 0) return;
    qsort(mb_times_ + skip, n, sizeof(double), tune_cmp_);
    const double *t = mb_times_ + skip;
    double med = (n % 2) ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    if (med > 0) tune_metric("gflops", gflop_ / (med * 1e-3));
}

const void *tune_output(size_t *nbytes) {
    *nbytes = sizeof(float) * (size_t)cout_ * hw_ * hw_;
    return out_;
}
