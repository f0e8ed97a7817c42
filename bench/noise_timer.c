/* noise_timer.c: bench/noise.py's own timer, independent of tune's measurement path.
 *
 * Linked with a program's objects compiled with -Dmain=tune_harness_main_ (so the harness's
 * main, its repetition loop and its statistics are not used), it calls the program's
 * tune_setup, one untimed tune_kernel, then NOISE_REPS (default 5) timed calls with its own
 * CLOCK_MONOTONIC reads, and prints the median in ms, nothing else.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void tune_setup(int argc, char **argv);
void tune_kernel(void);

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *r = getenv("NOISE_REPS");
    int reps = r ? atoi(r) : 5;
    if (reps < 1 || reps > 1000) reps = 5;
    double t[1000];
    tune_setup(argc, argv);
    tune_kernel();
    for (int i = 0; i < reps; i++) {
        double t0 = now_ms();
        tune_kernel();
        t[i] = now_ms() - t0;
    }
    qsort(t, reps, sizeof t[0], cmp);
    printf("%.6f\n", reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]));
    return 0;
}
