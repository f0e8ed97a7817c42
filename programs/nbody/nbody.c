/* nbody.c: floating-point kernel. S leapfrog steps of a gravitational N-body system in double
 * precision (default 2560 bodies, 2 steps): every step computes all N^2 pairwise accelerations
 * with a square root and a division each, then advances velocities and positions.
 *
 * The pair loop runs over the source body j outside and the target body i inside, so each
 * acceleration a[i] adds its N contributions in the fixed order j = 0, 1, ..., N-1 and the inner
 * loop is independent across i (vectorisable without reassociation).  A body's pull on itself
 * adds exactly zero (dx = 0), so no branch is needed.  In ISO C mode (-std=c11) GCC fuses no
 * multiply-adds, sqrt is correctly rounded, and the study builds with -fno-math-errno (which
 * changes no value, only whether sqrt may set errno), so the output is bit-identical at every
 * -O level and -march.  Each timed call restarts from the initial state.
 *
 * Arguments (optional): --n N (bodies, default 2560)  --steps S (default 2)
 */
#include "../tune_harness.h"

static int N = 2560, S = 2;
static double *x0, *y0_, *z0, *vx0, *vy0, *vz0, *m;          /* initial state */
static double *x, *y, *z, *vx, *vy, *vz, *ax, *ay, *az, *out;

static const double DT = 1e-3, EPS2 = 1e-4;

static uint64_t rng_state = 88172645463325252ull;
static double uniform(void) {                                  /* [0, 1) with 53 random bits */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static int parse_arg(const char *name, const char *s, int lo, int hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "nbody: bad value for %s: %s\n", name, s);
        exit(2);
    }
    return (int)v;
}

static double *xmalloc(size_t n) {
    double *p = aligned_alloc(64, (sizeof(double) * n + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "nbody: out of memory\n"); exit(2); }
    return p;
}

void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) { fprintf(stderr, "nbody: %s needs a value\n", argv[i]); exit(2); }
        if (!strcmp(argv[i], "--n")) N = parse_arg("--n", argv[++i], 1, 1 << 20);
        else if (!strcmp(argv[i], "--steps")) S = parse_arg("--steps", argv[++i], 1, 100000);
        else { fprintf(stderr, "nbody: unknown argument %s\n", argv[i]); exit(2); }
    }
    double **arrays[] = {&x0, &y0_, &z0, &vx0, &vy0, &vz0, &m, &x, &y, &z, &vx, &vy, &vz, &ax, &ay, &az};
    for (size_t k = 0; k < sizeof arrays / sizeof arrays[0]; k++) *arrays[k] = xmalloc((size_t)N);
    out = xmalloc((size_t)N * 6);
    for (int i = 0; i < N; i++) {           /* a cube of bodies, small random velocities */
        x0[i] = uniform() * 2 - 1; y0_[i] = uniform() * 2 - 1; z0[i] = uniform() * 2 - 1;
        vx0[i] = (uniform() - 0.5) * 0.1; vy0[i] = (uniform() - 0.5) * 0.1; vz0[i] = (uniform() - 0.5) * 0.1;
        m[i] = (0.5 + uniform()) / N;
    }
}

static void accelerations(int n, const double *restrict px, const double *restrict py,
                          const double *restrict pz, const double *restrict pm,
                          double *restrict qx, double *restrict qy, double *restrict qz) {
    for (int i = 0; i < n; i++) { qx[i] = 0.0; qy[i] = 0.0; qz[i] = 0.0; }
    for (int j = 0; j < n; j++) {
        const double xj = px[j], yj = py[j], zj = pz[j], mj = pm[j];
        for (int i = 0; i < n; i++) {
            const double dx = xj - px[i], dy = yj - py[i], dz = zj - pz[i];
            const double r2 = dx * dx + dy * dy + dz * dz + EPS2;
            const double r = sqrt(r2);
            const double s = mj / (r2 * r);
            qx[i] += dx * s;
            qy[i] += dy * s;
            qz[i] += dz * s;
        }
    }
}

void tune_kernel(void) {
    const size_t bytes = sizeof(double) * (size_t)N;
    memcpy(x, x0, bytes); memcpy(y, y0_, bytes); memcpy(z, z0, bytes);
    memcpy(vx, vx0, bytes); memcpy(vy, vy0, bytes); memcpy(vz, vz0, bytes);
    for (int s = 0; s < S; s++) {
        accelerations(N, x, y, z, m, ax, ay, az);
        for (int i = 0; i < N; i++) {
            vx[i] += ax[i] * DT; vy[i] += ay[i] * DT; vz[i] += az[i] * DT;
            x[i] += vx[i] * DT; y[i] += vy[i] * DT; z[i] += vz[i] * DT;
        }
    }
}

const void *tune_output(size_t *nbytes) {
    double *arrays[] = {x, y, z, vx, vy, vz};
    for (int k = 0; k < 6; k++) memcpy(out + (size_t)k * N, arrays[k], sizeof(double) * (size_t)N);
    *nbytes = sizeof(double) * (size_t)N * 6;
    return out;
}

void tune_finish(void) {
    tune_metric("interactions", (double)N * N * S);
}
