/* conv2d_naive.c: the textbook direct 3x3 conv2d (stride 1, pad 1, fp32, batch 1) as plain
 * loops on the logical layouts (input NCHW unpadded with bounds checks, weights OIHW,
 * output NCHW). The baseline the schedules are compared with (bench/conv2d_schedule.py
 * compiles it at -O3). Shape by -DH= -DW= -DCI= -DCO= (default ResNet-18 C9).
 * Its summation order matches the templates (ci, kh, kw ascending) but it uses `+=` rather
 * than fmaf, so its bytes match the schedules only when the compiler contracts to FMA the
 * same way; compare it with a tolerance. */
#include "tune_harness.h"
#include "conv_common.h"

#ifndef H
#define H 14
#endif
#ifndef W
#define W 14
#endif
#ifndef CI
#define CI 256
#endif
#ifndef CO
#define CO 256
#endif

static float *in_, *wt_, *out_;

void tune_setup(int argc, char **argv) {
    (void)argc; (void)argv;
    in_ = conv_alloc(sizeof(float) * (size_t)CI * H * W);
    for (long i = 0; i < (long)CI * H * W; i++) in_[i] = conv_value(i, CONV_SALT_INPUT);
    wt_ = conv_alloc(sizeof(float) * (size_t)CO * CI * 9);
    for (long i = 0; i < (long)CO * CI * 9; i++) wt_[i] = conv_value(i, CONV_SALT_WEIGHT);
    out_ = conv_alloc(sizeof(float) * (size_t)CO * H * W);
}

void tune_kernel(void) {
    conv_tic();
    for (int co = 0; co < CO; co++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float s = 0.0f;
                for (int ci = 0; ci < CI; ci++)
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++) {
                            int iy = y + kh - 1, ix = x + kw - 1;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                s += in_[((size_t)ci * H + iy) * W + ix] *
                                     wt_[(((size_t)co * CI + ci) * 3 + kh) * 3 + kw];
                        }
                out_[((size_t)co * H + y) * W + x] = s;
            }
    conv_toc();
}

void tune_finish(void) { conv_report_gflops(2.0 * CO * CI * 9.0 * H * W * 1e-9); }

const void *tune_output(size_t *nbytes) {
    *nbytes = sizeof(float) * (size_t)CO * H * W;
    return out_;
}
