/* sort.c: integer kernel. Sorts N pseudo-random 32-bit keys with an introspective quicksort
 * (median-of-three pivots, insertion sort for short ranges, heapsort past a depth limit),
 * the way a C library or a database engine sorts: branchy integer code whose speed depends on
 * inlining, branch layout, if-conversion and loop optimisations rather than on vector width.
 *
 * Each timed call copies the unsorted keys into the work array and sorts it, so every call does
 * the same work and the output (the sorted keys) is the same at every -O level.
 *
 * Arguments (optional): --n N   number of keys (default 400000)
 */
#include "../tune_harness.h"

static int N = 400000;
static uint32_t *keys, *work;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t xorshift(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void insertion_sort(uint32_t *a, long lo, long hi) {
    for (long i = lo + 1; i <= hi; i++) {
        uint32_t v = a[i];
        long j = i - 1;
        while (j >= lo && a[j] > v) { a[j + 1] = a[j]; j--; }
        a[j + 1] = v;
    }
}

static void sift_down(uint32_t *a, long start, long n, long root) {
    uint32_t v = a[start + root];
    for (;;) {
        long child = 2 * root + 1;
        if (child >= n) break;
        if (child + 1 < n && a[start + child + 1] > a[start + child]) child++;
        if (a[start + child] <= v) break;
        a[start + root] = a[start + child];
        root = child;
    }
    a[start + root] = v;
}

static void heap_sort(uint32_t *a, long lo, long hi) {
    long n = hi - lo + 1;
    for (long i = n / 2 - 1; i >= 0; i--) sift_down(a, lo, n, i);
    for (long end = n - 1; end > 0; end--) {
        uint32_t t = a[lo]; a[lo] = a[lo + end]; a[lo + end] = t;
        sift_down(a, lo, end, 0);
    }
}

static void swap(uint32_t *a, long i, long j) { uint32_t t = a[i]; a[i] = a[j]; a[j] = t; }

static void intro_sort(uint32_t *a, long lo, long hi, int depth) {
    while (hi - lo > 16) {
        if (depth-- == 0) { heap_sort(a, lo, hi); return; }
        long mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) swap(a, mid, lo);
        if (a[hi] < a[lo]) swap(a, hi, lo);
        if (a[hi] < a[mid]) swap(a, hi, mid);
        uint32_t pivot = a[mid];
        long i = lo, j = hi;
        while (i <= j) {                       /* Hoare partition */
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) { swap(a, i, j); i++; j--; }
        }
        if (j - lo < hi - i) { intro_sort(a, lo, j, depth); lo = i; }   /* recurse on the smaller side */
        else { intro_sort(a, i, hi, depth); hi = j; }
    }
    insertion_sort(a, lo, hi);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "sort: out of memory\n"); exit(2); }
    return p;
}

void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000000) { fprintf(stderr, "sort: bad value for --n: %s\n", argv[i]); exit(2); }
            N = (int)v;
        } else { fprintf(stderr, "sort: unknown argument %s\n", argv[i]); exit(2); }
    }
    keys = xmalloc(sizeof(uint32_t) * (size_t)N);
    work = xmalloc(sizeof(uint32_t) * (size_t)N);
    /* random keys with runs of equal and of ascending values, as real data has */
    for (int i = 0; i < N; i++) {
        uint32_t r = xorshift();
        keys[i] = (r & 7) == 0 && i > 0 ? keys[i - 1] + (r >> 28) : r;
    }
}

void tune_kernel(void) {
    memcpy(work, keys, sizeof(uint32_t) * (size_t)N);
    int depth = 0;
    for (long n = N; n > 1; n >>= 1) depth += 2;
    intro_sort(work, 0, N - 1, depth);
}

const void *tune_output(size_t *nbytes) {
    *nbytes = sizeof(uint32_t) * (size_t)N;
    return work;
}

void tune_finish(void) {
    long unsorted = 0;
    for (int i = 1; i < N; i++) unsorted += work[i - 1] > work[i];
    tune_metric("unsorted_pairs", (double)unsorted);
    tune_metric("keys", (double)N);
}
