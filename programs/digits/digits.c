/* digits.c: quantised inference of the `digits` CNN (study search_spaces/digits-quant.toml).
 *
 * Model (trained by programs/digits/digits.py, data in digits_model.c, layout in digits_model.h):
 *   8x8 image -> conv 3x3 'same' 1->8 channels + bias + ReLU -> dense 512->10 + bias -> argmax.
 *
 * tune_kernel classifies the whole held-out set (360 images) in batches of BATCH images; each
 * batch is one OpenMP parallel region (threads: OMP_NUM_THREADS, binding: OMP_PROC_BIND /
 * OMP_PLACES) with the conv of all its images, then the dense layer of all its images.
 * tune_output = the predicted labels, int32[n].
 *
 * Modes (compile-time default by define, runtime override by argument):
 *   -DQUANT=fp32|int16|int8|int4      --quant=fp32|int16|int8|int4      (default fp32)
 *   -DSCALES=per_tensor|per_channel   --scales=per_tensor|per_channel   (default per_tensor)
 *   -DBATCH=<n>                       --batch=<n>                       (default 64; > n -> n)
 *
 * Quantised modes (N = 16, 8, 4):
 *   weights   symmetric signed N-bit, q = round(w / s_w), s_w = amax|w| / (2^(N-1) - 1), amax per
 *             tensor or per output channel (conv: 8 channels, dense: 10 classes). Storage int16_t,
 *             int8_t, or int4 packed two per byte (element i in byte i/2, low nibble first); the
 *             int4 dense layer unpacks nibbles in its inner loop, the 72 int4 conv weights are
 *             unpacked once at setup.
 *   activations unsigned N-bit with zero point 0 (inputs are >= 0, hidden values are ReLU outputs):
 *             input q = (p * (2^N - 1) + 8) / 16 for pixel p in 0..16 (scale 1/(2^N - 1));
 *             hidden scale amax_h / (2^N - 1), amax_h calibrated on the training set.
 *   accumulation int32 (int8, int4) or int64 (int16); biases quantised to the accumulator scale.
 *   requantisation: y = (acc * m + 2^(shift-1)) >> shift with m in [2^30, 2^31), the fixed-point
 *             form of s_w * s_in / s_out (64-bit product; 128-bit for int16), clamped to [0, 2^N - 1]
 *             (the ReLU). Logits are requantised to the common scale max(s_w) * s_h, so per-channel
 *             classes compare fairly; argmax takes the first maximum.
 *   The integer path does no floating point after setup: its labels do not depend on -O level
 *   or compiler. The fp32 path accumulates in a fixed order; build with -ffp-contract=off and
 *   without -ffast-math and its labels are also identical at every -O level.
 *
 * Metrics (tune_metric): accuracy (top-1 on the held-out set), items (images per kernel call),
 *   throughput (items/s from the median of this program's own kernel timings, warm-up excluded),
 *   model_bytes (weights + biases + scales as deployed: fp32 4 B each; intN weights N bits packed,
 *   biases int32 (int64 for int16), float32 weight scales (1 per tensor or 1 per channel) and the
 *   two float32 activation scales), bits, per_channel, batch, threads.
 */
#include "../tune_harness.h"

#include <limits.h>
#include "digits_model.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define Q_fp32 32
#define Q_int16 16
#define Q_int8 8
#define Q_int4 4
#define Q_32 32
#define Q_16 16
#define Q_8 8
#define Q_4 4
#define S_per_tensor 0
#define S_per_channel 1
#define S_0 0
#define S_1 1
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#ifndef QUANT
#define QUANT fp32
#endif
#ifndef SCALES
#define SCALES per_tensor
#endif
#ifndef BATCH
#define BATCH 64
#endif

#define CH DIGITS_CH
#define HID DIGITS_HIDDEN
#define NCL DIGITS_CLASSES

typedef struct { int64_t m; int shift; } rq_t;

static int g_bits = CAT(Q_, QUANT);
static int g_per_channel = CAT(S_, SCALES);
static int g_batch = BATCH;
static int g_n;
static int32_t *g_labels;
static void *g_hidden;            /* batch x 512 activations (float / uint16_t / uint8_t) */

static struct {
    int qw, qa;                   /* 2^(N-1) - 1, 2^N - 1 */
    double s_x, s_h, s_wc[CH], s_wd[NCL];
    int8_t cw8[CH * 9];
    int16_t cw16[CH * 9];
    uint8_t cw4[(CH * 9 + 1) / 2];
    int8_t dw8[NCL * HID];
    int16_t dw16[NCL * HID];
    uint8_t dw4[NCL * HID / 2];
    int32_t cb32[CH], db32[NCL];
    int64_t cb64[CH], db64[NCL];
    rq_t rq_conv[CH], rq_dense[NCL];
} Q;

static double *g_times;
static int g_ntimes, g_captimes;

/* ------------------------------------------------------------------ fp32 */

static void conv_fp32(const unsigned char *px, float *h) {
    float x[100] = {0};
    for (int y = 0; y < 8; y++)
        for (int xx = 0; xx < 8; xx++) x[(y + 1) * 10 + xx + 1] = (float)px[y * 8 + xx] / 16.0f;
    for (int y = 0; y < 8; y++)
        for (int xx = 0; xx < 8; xx++)
            for (int c = 0; c < CH; c++) {
                float acc = digits_conv_b[c];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        acc += digits_conv_w[c * 9 + ky * 3 + kx] * x[(y + ky) * 10 + xx + kx];
                h[(y * 8 + xx) * CH + c] = acc > 0 ? acc : 0.0f;
            }
}

static int32_t dense_fp32(const float *h) {
    int32_t best = 0;
    float bestv = 0;
    for (int k = 0; k < NCL; k++) {
        const float *w = digits_dense_w + k * HID;
        float acc = digits_dense_b[k];
        for (int i = 0; i < HID; i++) acc += w[i] * h[i];
        if (k == 0 || acc > bestv) { bestv = acc; best = k; }
    }
    return best;
}

/* ------------------------------------------------------------------ integer */

static inline int64_t rq64(int64_t acc, rq_t r) {
    return (acc * r.m + ((int64_t)1 << (r.shift - 1))) >> r.shift;
}

static inline int64_t rq128(int64_t acc, rq_t r) {
    return (int64_t)(((__int128)acc * r.m + ((__int128)1 << (r.shift - 1))) >> r.shift);
}

static inline int64_t clamp_act(int64_t v, int64_t hi) { return v < 0 ? 0 : (v > hi ? hi : v); }

static void quant_input(const unsigned char *px, int32_t *x) {       /* padded 10x10 */
    memset(x, 0, 100 * sizeof *x);
    for (int y = 0; y < 8; y++)
        for (int xx = 0; xx < 8; xx++) x[(y + 1) * 10 + xx + 1] = (px[y * 8 + xx] * Q.qa + 8) / 16;
}

static void conv_i8(const unsigned char *px, uint8_t *h) {           /* int8 and int4 */
    int32_t x[100];
    quant_input(px, x);
    for (int y = 0; y < 8; y++)
        for (int xx = 0; xx < 8; xx++)
            for (int c = 0; c < CH; c++) {
                int32_t acc = Q.cb32[c];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        acc += Q.cw8[c * 9 + ky * 3 + kx] * x[(y + ky) * 10 + xx + kx];
                h[(y * 8 + xx) * CH + c] = (uint8_t)clamp_act(rq64(acc, Q.rq_conv[c]), Q.qa);
            }
}

static void conv_i16(const unsigned char *px, uint16_t *h) {
    int32_t x[100];
    quant_input(px, x);
    for (int y = 0; y < 8; y++)
        for (int xx = 0; xx < 8; xx++)
            for (int c = 0; c < CH; c++) {
                int64_t acc = Q.cb64[c];
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        acc += (int64_t)Q.cw16[c * 9 + ky * 3 + kx] * x[(y + ky) * 10 + xx + kx];
                h[(y * 8 + xx) * CH + c] = (uint16_t)clamp_act(rq128(acc, Q.rq_conv[c]), Q.qa);
            }
}

#define ARGMAX_UPDATE(k, v)                                   \
    do {                                                      \
        int64_t v_ = (v);                                     \
        if ((k) == 0 || v_ > bestv) { bestv = v_; best = (k); } \
    } while (0)

static int32_t dense_i8(const uint8_t *h) {
    int32_t best = 0;
    int64_t bestv = 0;
    for (int k = 0; k < NCL; k++) {
        const int8_t *w = Q.dw8 + k * HID;
        int32_t acc = Q.db32[k];
        for (int i = 0; i < HID; i++) acc += w[i] * h[i];
        ARGMAX_UPDATE(k, rq64(acc, Q.rq_dense[k]));
    }
    return best;
}

static int32_t dense_i4(const uint8_t *h) {
    int32_t best = 0;
    int64_t bestv = 0;
    for (int k = 0; k < NCL; k++) {
        const uint8_t *w = Q.dw4 + k * (HID / 2);
        int32_t acc = Q.db32[k];
        for (int j = 0; j < HID / 2; j++) {
            int lo = (int8_t)(uint8_t)(w[j] << 4) >> 4;
            int hi = (int8_t)w[j] >> 4;
            acc += lo * h[2 * j] + hi * h[2 * j + 1];
        }
        ARGMAX_UPDATE(k, rq64(acc, Q.rq_dense[k]));
    }
    return best;
}

static int32_t dense_i16(const uint16_t *h) {
    int32_t best = 0;
    int64_t bestv = 0;
    for (int k = 0; k < NCL; k++) {
        const int16_t *w = Q.dw16 + k * HID;
        int64_t acc = Q.db64[k];
        /* |w*h| <= 32767 * 65535 < 2^31: the product fits int32, the sum needs int64 */
        for (int i = 0; i < HID; i++) acc += (int64_t)(w[i] * (int32_t)h[i]);
        ARGMAX_UPDATE(k, rq128(acc, Q.rq_dense[k]));
    }
    return best;
}

/* ------------------------------------------------------------------ quantisation (setup) */

static double round_away(double x) { return copysign(floor(fabs(x) + 0.5), x); }

static rq_t make_rq(double real) {
    int e;
    double f = frexp(real, &e);
    int64_t m = (int64_t)floor(f * 2147483648.0 + 0.5);
    if (m == ((int64_t)1 << 31)) { m >>= 1; e++; }
    rq_t r = {m, 31 - e};
    if (real <= 0 || r.shift < 1 || r.shift > 62) tune_infeasible("requantisation multiplier out of range");
    return r;
}

static void weight_scales(const float *w, int rows, int cols, int qmax, double *s) {
    float tmax = 0;
    for (int i = 0; i < rows * cols; i++) tmax = fmaxf(tmax, fabsf(w[i]));
    for (int r = 0; r < rows; r++) {
        float amax = tmax;
        if (g_per_channel) {
            amax = 0;
            for (int i = 0; i < cols; i++) amax = fmaxf(amax, fabsf(w[r * cols + i]));
        }
        double a = amax == 0 ? (double)qmax : (double)amax;
        s[r] = a / qmax;
    }
}

static int64_t quant_w(float w, double s, int qmax) {
    double q = round_away((double)w / s);
    return (int64_t)(q > qmax ? qmax : (q < -qmax ? -qmax : q));
}

static void pack4(uint8_t *dst, int i, int64_t q) {
    uint8_t nib = (uint8_t)(q & 0xF);
    if (i % 2 == 0) dst[i / 2] = (uint8_t)((dst[i / 2] & 0xF0) | nib);
    else dst[i / 2] = (uint8_t)((dst[i / 2] & 0x0F) | (nib << 4));
}

static void quantise(void) {
    int N = g_bits;
    Q.qw = (1 << (N - 1)) - 1;
    Q.qa = (1 << N) - 1;
    Q.s_x = 1.0 / Q.qa;
    Q.s_h = (double)digits_act_amax / Q.qa;
    weight_scales(digits_conv_w, CH, 9, Q.qw, Q.s_wc);
    weight_scales(digits_dense_w, NCL, HID, Q.qw, Q.s_wd);
    for (int c = 0; c < CH; c++) {
        for (int t = 0; t < 9; t++) {
            int64_t q = quant_w(digits_conv_w[c * 9 + t], Q.s_wc[c], Q.qw);
            Q.cw16[c * 9 + t] = (int16_t)q;
            Q.cw8[c * 9 + t] = (int8_t)(N <= 8 ? q : 0);
            if (N == 4) pack4(Q.cw4, c * 9 + t, q);
        }
        double b = round_away((double)digits_conv_b[c] / (Q.s_wc[c] * Q.s_x));
        if (N <= 8 && fabs(b) > INT32_MAX) tune_infeasible("conv bias overflows int32");
        Q.cb64[c] = (int64_t)b;
        Q.cb32[c] = (int32_t)(N <= 8 ? b : 0);
        Q.rq_conv[c] = make_rq(Q.s_wc[c] * Q.s_x / Q.s_h);
    }
    if (N == 4) {      /* the kernel uses the int4 conv weights unpacked from their packed form */
        for (int i = 0; i < CH * 9; i++)
            Q.cw8[i] = (int8_t)(i % 2 ? (int8_t)Q.cw4[i / 2] >> 4 : (int8_t)(uint8_t)(Q.cw4[i / 2] << 4) >> 4);
    }
    double s_wd_max = 0;
    for (int k = 0; k < NCL; k++) s_wd_max = fmax(s_wd_max, Q.s_wd[k]);
    for (int k = 0; k < NCL; k++) {
        for (int i = 0; i < HID; i++) {
            int64_t q = quant_w(digits_dense_w[k * HID + i], Q.s_wd[k], Q.qw);
            Q.dw16[k * HID + i] = (int16_t)q;
            Q.dw8[k * HID + i] = (int8_t)(N <= 8 ? q : 0);
            if (N == 4) pack4(Q.dw4, k * HID + i, q);
        }
        double b = round_away((double)digits_dense_b[k] / (Q.s_wd[k] * Q.s_h));
        if (N <= 8 && fabs(b) > INT32_MAX) tune_infeasible("dense bias overflows int32");
        Q.db64[k] = (int64_t)b;
        Q.db32[k] = (int32_t)(N <= 8 ? b : 0);
        Q.rq_dense[k] = make_rq(Q.s_wd[k] / s_wd_max);
    }
}

static long model_bytes(void) {
    long nw = CH * 9 + NCL * HID, nb = CH + NCL;
    if (g_bits == 32) return 4 * (nw + nb);
    long w = (CH * 9 * g_bits + 7) / 8 + ((long)NCL * HID * g_bits + 7) / 8;
    long b = nb * (g_bits == 16 ? 8 : 4);
    long scales = 4 * (g_per_channel ? CH + NCL : 2) + 4 * 2;
    return w + b + scales;
}

/* ------------------------------------------------------------------ harness protocol */

static const char *opt_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc) return argv[++*i];
    return NULL;
}

static void usage(const char *why) {
    fprintf(stderr, "digits: %s\nusage: digits [--quant=fp32|int16|int8|int4] "
                    "[--scales=per_tensor|per_channel] [--batch=N]\n", why);
    exit(2);
}

void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--quant"))) {
            if (!strcmp(v, "fp32")) g_bits = 32;
            else if (!strcmp(v, "int16")) g_bits = 16;
            else if (!strcmp(v, "int8")) g_bits = 8;
            else if (!strcmp(v, "int4")) g_bits = 4;
            else usage("unknown --quant");
        } else if ((v = opt_value(argc, argv, &i, "--scales"))) {
            if (!strcmp(v, "per_tensor")) g_per_channel = 0;
            else if (!strcmp(v, "per_channel")) g_per_channel = 1;
            else usage("unknown --scales");
        } else if ((v = opt_value(argc, argv, &i, "--batch"))) {
            g_batch = atoi(v);
        } else {
            usage(argv[i]);
        }
    }
    if (g_bits != 32 && g_bits != 16 && g_bits != 8 && g_bits != 4) usage("QUANT must be fp32, int16, int8 or int4");
    if (g_batch < 1) tune_infeasible("batch must be >= 1");
    g_n = digits_n_test;
    int batch = g_batch < g_n ? g_batch : g_n;
    size_t act = g_bits == 32 ? sizeof(float) : g_bits == 16 ? sizeof(uint16_t) : sizeof(uint8_t);
    g_hidden = calloc((size_t)batch * HID, act);
    g_labels = calloc((size_t)g_n, sizeof *g_labels);
    if (!g_hidden || !g_labels) tune_infeasible("out of memory");
    if (g_bits != 32) quantise();
}

static void run_batch(int b0, int nb) {
    const int bits = g_bits;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int i = 0; i < nb; i++) {
            const unsigned char *px = digits_test_x + (size_t)(b0 + i) * 64;
            if (bits == 32) conv_fp32(px, (float *)g_hidden + (size_t)i * HID);
            else if (bits == 16) conv_i16(px, (uint16_t *)g_hidden + (size_t)i * HID);
            else conv_i8(px, (uint8_t *)g_hidden + (size_t)i * HID);
        }
#pragma omp for schedule(static)
        for (int i = 0; i < nb; i++) {
            int32_t label;
            if (bits == 32) label = dense_fp32((const float *)g_hidden + (size_t)i * HID);
            else if (bits == 16) label = dense_i16((const uint16_t *)g_hidden + (size_t)i * HID);
            else if (bits == 8) label = dense_i8((const uint8_t *)g_hidden + (size_t)i * HID);
            else label = dense_i4((const uint8_t *)g_hidden + (size_t)i * HID);
            g_labels[b0 + i] = label;
        }
    }
}

void tune_kernel(void) {
    double t0 = tune_now_ms_();
    for (int b0 = 0; b0 < g_n; b0 += g_batch) run_batch(b0, g_n - b0 < g_batch ? g_n - b0 : g_batch);
    double dt = tune_now_ms_() - t0;
    if (g_ntimes == g_captimes) {
        g_captimes = g_captimes ? 2 * g_captimes : 64;
        g_times = realloc(g_times, sizeof(double) * g_captimes);
        if (!g_times) tune_infeasible("out of memory");
    }
    g_times[g_ntimes++] = dt;
}

const void *tune_output(size_t *nbytes) {
    *nbytes = sizeof(int32_t) * (size_t)g_n;
    return g_labels;
}

void tune_finish(void) {
    int correct = 0;
    for (int i = 0; i < g_n; i++) correct += g_labels[i] == digits_test_y[i];
    tune_metric("accuracy", (double)correct / g_n);
    tune_metric("items", g_n);
    tune_metric("model_bytes", (double)model_bytes());
    int warm = (int)tune_env_("TUNE_WARMUP", 1);
    if (warm < 0) warm = 0;
    if (warm >= g_ntimes) warm = g_ntimes - 1;
    int n = g_ntimes - warm;
    if (n > 0) {
        double *s = g_times + warm;
        qsort(s, n, sizeof(double), tune_cmp_);
        double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
        if (med > 0) tune_metric("throughput", g_n / (med * 1e-3));
    }
    tune_metric("bits", g_bits);
    tune_metric("per_channel", g_per_channel);
    tune_metric("batch", g_batch);
#ifdef _OPENMP
    tune_metric("threads", omp_get_max_threads());
#else
    tune_metric("threads", 1);
#endif
}
