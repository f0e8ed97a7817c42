/* conv_common.h: deterministic inputs and a GFLOP/s metric shared by the conv2d / depthwise
 * schedules and the naive reference, so a test (numpy) can regenerate exactly the same data.
 * The templates inline this file (Jinja `include`), so a generated .c needs no include path
 * besides the one for tune_harness.h; conv2d_naive.c #includes it.
 *
 *   value(i, salt) = (float)((i * 37 + salt) % 101) / 101.0f - 0.5f
 *
 * where i is the flat index in the LOGICAL layout (input NCHW without padding,
 * conv weights OIHW, depthwise weights C x 3 x 3). Include after tune_harness.h.
 *
 * GFLOP/s: tune_kernel brackets its work with conv_tic()/conv_toc(); tune_finish calls
 * conv_report_gflops(gflop), which reports metric "gflops" = gflop / median kernel seconds
 * over the timed calls (the first TUNE_WARMUP calls are skipped, like the harness does).
 */
#ifndef CONV_COMMON_H
#define CONV_COMMON_H
#include <stdlib.h>
#include <string.h>

#define CONV_SALT_INPUT 11
#define CONV_SALT_WEIGHT 29

static inline float conv_value(long i, int salt) {
    return (float)((i * 37 + salt) % 101) / 101.0f - 0.5f;
}

static void *conv_alloc(size_t nbytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, nbytes ? nbytes : 64) != 0) {
        fprintf(stderr, "out of memory (%zu bytes)\n", nbytes);
        exit(2);
    }
    memset(p, 0, nbytes);
    return p;
}

/* Zero-padded (pad 1 on each side) copy of a C x H x W input: C x (H+2) x (W+2). */
static float *conv_padded_input(int c, int h, int w) {
    int hp = h + 2, wp = w + 2;
    float *in = conv_alloc(sizeof(float) * (size_t)c * hp * wp);
    for (int ci = 0; ci < c; ci++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                in[((size_t)ci * hp + y + 1) * wp + x + 1] =
                    conv_value(((long)ci * h + y) * w + x, CONV_SALT_INPUT);
    return in;
}

#define CONV_MAX_TIMED 4096
static double conv_times_[CONV_MAX_TIMED];
static int conv_ntimes_ = 0;
static double conv_t0_ = 0.0;

static inline void conv_tic(void) { conv_t0_ = tune_now_ms_(); }
static inline void conv_toc(void) {
    if (conv_ntimes_ < CONV_MAX_TIMED) conv_times_[conv_ntimes_++] = tune_now_ms_() - conv_t0_;
}

static void conv_report_gflops(double gflop) {
    int skip = (int)tune_env_("TUNE_WARMUP", 1);
    if (skip < 0) skip = 0;
    if (skip >= conv_ntimes_) skip = 0;
    int n = conv_ntimes_ - skip;
    if (n <= 0) return;
    qsort(conv_times_ + skip, n, sizeof(double), tune_cmp_);
    const double *t = conv_times_ + skip;
    double med = (n % 2) ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    tune_metric("gflop", gflop);
    if (med > 0) tune_metric("gflops", gflop / (med * 1e-3));
}
#endif
