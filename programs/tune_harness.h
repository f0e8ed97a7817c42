/* tune_harness.h: the measurement protocol between `tune` and a native program.
 *
 * A program includes this header once (after defining nothing special) and implements
 *
 *     void        tune_setup(int argc, char **argv);   // allocate, fill inputs (untimed)
 *     void        tune_kernel(void);                   // the work being tuned (timed)
 *     const void *tune_output(size_t *nbytes);         // the result to verify
 *     void        tune_finish(void);                   // optional metrics via tune_metric (untimed)
 *
 * The harness provides main(): one warm-up call, then timed repetitions until the 95%
 * confidence interval of the median is narrower than TUNE_CI_REL of the median, or
 * TUNE_MAX_REPS or TUNE_MAX_SECONDS is reached. It then prints ONE line on stdout:
 *
 *     @tune {"samples_ms":[...],"cpu_ms":[...],"ctxsw":[v,i],"checksum":"<fnv1a-64 of output bytes>","metrics":{...}}
 *
 * samples_ms are wall times of the timed calls; cpu_ms the CPU time the process used in each
 * (all its threads); ctxsw the voluntary and involuntary context switches during the timed
 * calls. A single-threaded call whose CPU time is well under its wall time was descheduled:
 * something else ran on its core (tune records that per launch).
 *
 * A program that finds its configuration infeasible calls tune_infeasible("reason"),
 * which prints  @tune {"infeasible":"reason"}  and exits 0.
 *
 * Environment (all optional): TUNE_WARMUP (1), TUNE_MIN_REPS (5), TUNE_MAX_REPS (50),
 * TUNE_CI_REL (0.05), TUNE_MAX_SECONDS (10), TUNE_OUTPUT (path: raw output bytes are
 * written there, for tolerance-based verification).
 */
#ifndef TUNE_HARNESS_H
#define TUNE_HARNESS_H

#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

void tune_setup(int argc, char **argv);
void tune_kernel(void);
const void *tune_output(size_t *nbytes);
void tune_finish(void) __attribute__((weak));

#define TUNE_MAX_METRICS 64
static struct { char name[64]; double value; } tune_metrics_[TUNE_MAX_METRICS];
static int tune_nmetrics_ = 0;

/* Report an extra metric (accuracy, throughput...); call from tune_finish or tune_setup. */
static void tune_metric(const char *name, double value) {
    for (int i = 0; i < tune_nmetrics_; i++)
        if (strcmp(tune_metrics_[i].name, name) == 0) { tune_metrics_[i].value = value; return; }
    if (tune_nmetrics_ < TUNE_MAX_METRICS) {
        snprintf(tune_metrics_[tune_nmetrics_].name, sizeof tune_metrics_[0].name, "%s", name);
        tune_metrics_[tune_nmetrics_++].value = value;
    }
}

static void tune_json_string_(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') { putchar('\\'); putchar(*s); }
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", (unsigned char)*s);
        else putchar(*s);
    }
    putchar('"');
}

/* Stop here: the configuration cannot run (a tile overflows a buffer, say). */
static void tune_infeasible(const char *reason) {
    fflush(stdout);
    printf("\n@tune {\"infeasible\":");
    tune_json_string_(reason);
    printf("}\n");
    fflush(stdout);
    exit(0);
}

static double tune_env_(const char *name, double fallback) {
    const char *v = getenv(name);
    return (v && *v) ? atof(v) : fallback;
}

static double tune_now_ms_(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static double tune_cpu_ms_(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return -1;
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Region markers around each timed tune_kernel() call (not the warm-up), for tools that
 * count instructions between them (the qemu target's plugin). Distinct bodies keep the
 * compiler from merging them; noinline/noipa/used keep both as real functions with their
 * own symbols at any -O level and with -flto. */
#if defined(__GNUC__) && !defined(__clang__)
#define TUNE_MARKER_ATTRS_ __attribute__((noinline, noipa, used))
#else
#define TUNE_MARKER_ATTRS_ __attribute__((noinline, used))
#endif
static volatile int tune_region_state_;
static TUNE_MARKER_ATTRS_ void tune_region_begin(void) { tune_region_state_ = 1; __asm__ volatile("" ::: "memory"); }
static TUNE_MARKER_ATTRS_ void tune_region_end(void) { tune_region_state_ = 2; __asm__ volatile("" ::: "memory"); }

static int tune_cmp_(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Distribution-free 95% CI of the median from order statistics; relative width. */
static double tune_ci_rel_width_(const double *samples, int n) {
    if (n < 6) return INFINITY;
    double *s = malloc(sizeof(double) * n);
    memcpy(s, samples, sizeof(double) * n);
    qsort(s, n, sizeof(double), tune_cmp_);
    double half = 0.98 * sqrt((double)n);
    int lo = (int)floor(n / 2.0 - half), hi = (int)ceil(n / 2.0 + half);
    if (lo < 0) lo = 0;
    if (hi > n - 1) hi = n - 1;
    double med = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    double w = med > 0 ? (s[hi] - s[lo]) / med : INFINITY;
    free(s);
    return w;
}

static uint64_t tune_fnv1a_(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

int main(int argc, char **argv) {
    int warmup = (int)tune_env_("TUNE_WARMUP", 1);
    int min_reps = (int)tune_env_("TUNE_MIN_REPS", 5);
    int max_reps = (int)tune_env_("TUNE_MAX_REPS", 50);
    double ci_rel = tune_env_("TUNE_CI_REL", 0.05);
    double max_ms = tune_env_("TUNE_MAX_SECONDS", 10) * 1e3;
    if (min_reps < 1) min_reps = 1;
    if (max_reps < min_reps) max_reps = min_reps;

    tune_setup(argc, argv);
    for (int i = 0; i < warmup; i++) tune_kernel();

    double *samples = malloc(sizeof(double) * max_reps);
    double *cpu = malloc(sizeof(double) * max_reps);
    int n = 0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double start = tune_now_ms_();
    while (n < max_reps) {
        double c0 = tune_cpu_ms_();
        double t0 = tune_now_ms_();
        tune_region_begin();
        tune_kernel();
        tune_region_end();
        double t1 = tune_now_ms_();
        cpu[n] = tune_cpu_ms_() - c0;
        samples[n++] = t1 - t0;
        if (n >= min_reps && tune_ci_rel_width_(samples, n) <= ci_rel) break;
        if (n >= min_reps && tune_now_ms_() - start > max_ms) break;
    }

    getrusage(RUSAGE_SELF, &ru1);

    size_t nbytes = 0;
    const unsigned char *out = tune_output(&nbytes);
    const char *out_path = getenv("TUNE_OUTPUT");
    if (out_path && *out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(out, 1, nbytes, f) != nbytes) { perror("TUNE_OUTPUT"); return 3; }
        fclose(f);
    }
    if (tune_finish) tune_finish();

    fflush(stdout);
    printf("\n@tune {\"samples_ms\":[");
    for (int i = 0; i < n; i++) printf(i ? ",%.6f" : "%.6f", samples[i]);
    printf("],\"cpu_ms\":[");
    for (int i = 0; i < n; i++) printf(i ? ",%.6f" : "%.6f", cpu[i]);
    printf("],\"ctxsw\":[%ld,%ld]", ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
    printf(",\"checksum\":\"%016llx\",\"output_bytes\":%zu,\"metrics\":{",
           (unsigned long long)tune_fnv1a_(out, nbytes), nbytes);
    for (int i = 0; i < tune_nmetrics_; i++) {
        if (i) putchar(',');
        tune_json_string_(tune_metrics_[i].name);
        printf(":%.17g", tune_metrics_[i].value);
    }
    printf("}}\n");
    fflush(stdout);
    free(samples);
    free(cpu);
    return 0;
}

#endif
