/* stencil.c: memory-bound kernel. T sweeps of a 2-D five-point Jacobi stencil over an N x N
 * fp32 grid (default 2048 x 2048: 16 MiB per array, far beyond the caches), ping-ponging between
 * two arrays with fixed boundary values. Each sweep streams one array in and one out, so the
 * speed depends on vectorisation, prefetching and loop layout against the memory bandwidth.
 *
 * Exact at every -O level and -march: each point is ((((c + n) + s) + w) + e) * 0.2f in this
 * order, and in ISO C mode (-std=c11) GCC contracts nothing into FMAs.  Each timed call restarts
 * from the initial grid, so every call does the same work and gives the same output.
 *
 * Arguments (optional): --n N (grid side, default 2048)  --t T (sweeps, default 4)
 */
#include "../tune_harness.h"

static int N = 2048, T = 4;
static float *init, *a, *b, *result;

static uint32_t lcg_state = 2463534242u;
static float lcg_uniform(void) {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return (float)(lcg_state >> 8) * (1.0f / 16777216.0f);    /* [0, 1) in steps of 2^-24 */
}

static int parse_arg(const char *name, const char *s, int lo, int hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "stencil: bad value for %s: %s\n", name, s);
        exit(2);
    }
    return (int)v;
}

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "stencil: out of memory\n"); exit(2); }
    return p;
}

void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) { fprintf(stderr, "stencil: %s needs a value\n", argv[i]); exit(2); }
        if (!strcmp(argv[i], "--n")) N = parse_arg("--n", argv[++i], 3, 16384);
        else if (!strcmp(argv[i], "--t")) T = parse_arg("--t", argv[++i], 1, 10000);
        else { fprintf(stderr, "stencil: unknown argument %s\n", argv[i]); exit(2); }
    }
    size_t cells = (size_t)N * N;
    init = xmalloc(sizeof(float) * cells);
    a = xmalloc(sizeof(float) * cells);
    b = xmalloc(sizeof(float) * cells);
    for (size_t i = 0; i < cells; i++) init[i] = lcg_uniform();
}

static void sweep(const float *restrict src, float *restrict dst, int n) {
    for (int i = 1; i < n - 1; i++) {
        const float *up = src + (size_t)(i - 1) * n, *row = src + (size_t)i * n, *down = src + (size_t)(i + 1) * n;
        float *out = dst + (size_t)i * n;
        for (int j = 1; j < n - 1; j++)
            out[j] = ((((row[j] + up[j]) + down[j]) + row[j - 1]) + row[j + 1]) * 0.2f;
    }
}

void tune_kernel(void) {
    const size_t cells = (size_t)N * N;
    memcpy(a, init, sizeof(float) * cells);
    memcpy(b, init, sizeof(float) * cells);         /* the boundary rows and columns stay fixed */
    float *src = a, *dst = b;
    for (int t = 0; t < T; t++) {
        sweep(src, dst, N);
        float *tmp = src; src = dst; dst = tmp;
    }
    result = src;
}

const void *tune_output(size_t *nbytes) {
    *nbytes = sizeof(float) * (size_t)N * N;
    return result;
}

void tune_finish(void) {
    tune_metric("gbytes", 2.0 * sizeof(float) * (double)(N - 2) * (N - 2) * T * 1e-9);
}
