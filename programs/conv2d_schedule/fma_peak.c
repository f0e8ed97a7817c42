/* fma_peak.c: measured peak fp32 FLOP/s of this machine (used by bench/conv2d_schedule.py).
 *
 * Each thread runs ACC independent accumulator vectors of VBYTES bytes through
 * acc = acc * m + a (one FMA each with -ffp-contract=fast and an FMA-capable -march),
 * enough independent chains to cover FMA latency x FMA ports. Prints one line:
 *     peak_gflops <threads> <lanes> <gflops>
 * Build: gcc -O3 -march=native -ffp-contract=fast -fopenmp -DVBYTES=64 fma_peak.c
 * Run:   ./fma_peak [iterations [trials]]   (threads from OMP_NUM_THREADS; best trial printed)
 */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef VBYTES
#define VBYTES 64
#endif
#define LANES (VBYTES / 4)
#define ACC 12

typedef float vf __attribute__((vector_size(VBYTES)));

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000000L;
    int trials = argc > 2 ? atoi(argv[2]) : 3;
    int threads = 1;
    double best = 0.0;
    volatile float sink = 0.0f;
    for (int trial = 0; trial < trials; trial++) {
        double t0 = now_s();
        #pragma omp parallel reduction(+ : sink)
        {
            #pragma omp single
            threads = omp_get_num_threads();
            vf acc[ACC], m, a;
            for (int j = 0; j < LANES; j++) { m[j] = 0.999999f; a[j] = 1e-7f * (j + 1); }
            for (int i = 0; i < ACC; i++)
                for (int j = 0; j < LANES; j++) acc[i][j] = (float)(i + j + omp_get_thread_num());
            for (long it = 0; it < iters; it++) {
                #pragma GCC unroll 12
                for (int i = 0; i < ACC; i++) acc[i] = acc[i] * m + a;
                __asm__ volatile("" : "+x"(m));  /* keep the loop honest */
            }
            float s = 0.0f;
            for (int i = 0; i < ACC; i++)
                for (int j = 0; j < LANES; j++) s += acc[i][j];
            sink += s;
        }
        double dt = now_s() - t0;
        double gflops = 2.0 * ACC * LANES * (double)iters * threads / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    printf("peak_gflops %d %d %.2f\n", threads, LANES, best);
    return sink == 12345.0f;  /* use the result */
}
