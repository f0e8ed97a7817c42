/* noise_probe.c: the conv2d kernel of programs/conv2d (C9 shape) timed in one process, with
 * what bench/noise.py needs to tell the causes of across-process variation apart:
 *
 *   wall/cpu   per repetition: wall time and the process's CPU time. A repetition whose CPU
 *              time is well under its wall time was descheduled (another process had the core);
 *              one whose CPU time itself is high ran slower (frequency, cache, memory placement).
 *   spin       CPU time of a fixed ALU-only loop (no memory traffic) before and after: the
 *              core's own speed in this process (frequency, a sibling hyperthread).
 *   ctxsw      voluntary and involuntary context switches during the repetitions.
 *   addresses  of the buffers and the stack modulo 4 KiB (alignment), AnonHugePages (THP), and
 *              how evenly the weights' physical pages spread over 512 page colours (root only).
 *
 * Usage: noise_probe [REPS]   (prints one JSON line)
 */
#define main tune_harness_main_
#include "../programs/conv2d/conv2d.c"
#undef main
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static double spin(void) {
    double c0 = cpu_ms();
    volatile uint64_t sink;
    uint64_t y = 1;
    for (long i = 0; i < 20000000; i++) y = y * 6364136223846793005ULL + 1442695040888963407ULL;
    sink = y;
    (void)sink;
    return cpu_ms() - c0;
}

static long huge_kb(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "AnonHugePages:", 14)) v = atol(line + 14);
    fclose(f);
    return v;
}

static double colour_imbalance(const void *p, size_t n) {
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) return -1;
    int hist[512] = {0}, pages = 0;
    for (uintptr_t a = (uintptr_t)p & ~4095UL, e = (uintptr_t)p + n; a < e; a += 4096) {
        uint64_t ent;
        if (pread(fd, &ent, 8, (off_t)(a / 4096) * 8) != 8) break;
        uint64_t pfn = ent & ((1ULL << 55) - 1);
        if (!(ent >> 63) || pfn == 0) continue;
        hist[pfn % 512]++;
        pages++;
    }
    close(fd);
    int mx = 0;
    for (int i = 0; i < 512; i++) if (hist[i] > mx) mx = hist[i];
    return pages ? mx / ((double)pages / 512) : -1;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    if (reps < 1 || reps > 1000) reps = 10;
    char *none[] = {argv[0]};
    tune_setup(1, none);
    int stack_probe;
    double spin0 = spin();
    tune_kernel();
    double *wall = malloc(sizeof(double) * reps), *cpu = malloc(sizeof(double) * reps);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    for (int i = 0; i < reps; i++) {
        double c0 = cpu_ms(), t0 = tune_now_ms_();
        tune_kernel();
        wall[i] = tune_now_ms_() - t0;
        cpu[i] = cpu_ms() - c0;
    }
    getrusage(RUSAGE_SELF, &r1);
    double spin1 = spin();
    printf("{\"wall\":[");
    for (int i = 0; i < reps; i++) printf(i ? ",%.4f" : "%.4f", wall[i]);
    printf("],\"cpu\":[");
    for (int i = 0; i < reps; i++) printf(i ? ",%.4f" : "%.4f", cpu[i]);
    printf("],\"spin\":[%.4f,%.4f],\"ctxsw\":[%ld,%ld],\"align\":{\"in\":%lu,\"wt\":%lu,\"out\":%lu,\"stack\":%lu},"
           "\"huge_kb\":%ld,\"colour\":%.3f}\n",
           spin0, spin1, r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw,
           (unsigned long)((uintptr_t)in % 4096), (unsigned long)((uintptr_t)wt % 4096),
           (unsigned long)((uintptr_t)out % 4096), (unsigned long)((uintptr_t)&stack_probe % 4096),
           huge_kb(), colour_imbalance(wt, sizeof(float) * (size_t)K * C * KS * KS));
    return 0;
}
