/* insn_count.c: a QEMU TCG plugin that counts executed guest instructions for `tune`.
 *
 *   qemu-aarch64 -plugin insn_count.so,out=FILE[,mark=0xADDR]...[,counter=vcpu|atomic|inline] prog args
 *
 * Counting works for multi-threaded guests (in qemu-user every guest thread is a vCPU that
 * runs in its own host thread, in parallel). counter= picks how:
 *
 *   vcpu    (default) every executed translation block calls a helper that adds the block's
 *           instruction count to its vCPU's own 64-bit counter (one cache line per vCPU,
 *           single writer, relaxed atomic load/store: no locked instruction, no sharing).
 *   atomic  the helper does a relaxed atomic fetch-add on one shared counter.
 *   inline  the old way: a non-atomic inline add to one shared counter, no helper call.
 *           Fastest, exact for single-threaded guests, LOSES counts when guest threads run
 *           concurrently (QEMU 7.2's inline ops cannot address a per-vCPU counter).
 *
 * Each `mark` address gets an exec callback on the instruction there; every time it runs
 * (in whichever vCPU), the sum of all vCPUs' counters is logged, so the driver can cut out
 * the region between two marks (the harness's tune_region_begin/tune_region_end).
 * At exit the plugin writes to FILE (or QEMU's log):
 *
 *     mark <index> <count>     one line per execution of mark number <index> (first 64 per mark)
 *     total <count>            every guest instruction executed (all vCPUs)
 *     vcpus <n>                how many vCPU indices executed guest code
 *
 * A mark's count is the number of instructions executed before the marked instruction, by
 * all vCPUs together: the marking vCPU's contribution is exact; other vCPUs running at the
 * same moment contribute whatever they had executed when the mark ran (so a region with
 * concurrently running threads at its edges is not exactly reproducible).
 */
#include "tune_qemu_plugin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_MARKS 8
#define MAX_HITS 64
#define MAX_VCPUS 256          /* qemu-user reuses the lowest free index; more live threads share the overflow slot */

enum { COUNT_VCPU, COUNT_ATOMIC, COUNT_INLINE };
static int mode = COUNT_VCPU;

/* slot MAX_VCPUS is the shared counter (atomic/inline modes, and vCPU indices past the array) */
static struct { uint64_t n; char pad[56]; } counters[MAX_VCPUS + 1] __attribute__((aligned(64)));
static unsigned max_vcpu_seen;

static uint64_t marks[MAX_MARKS];
static int nmarks;
static uint64_t hits[MAX_MARKS][MAX_HITS];
static int nhits[MAX_MARKS];
static char out_path[4096];

static void on_tb_vcpu(unsigned int vcpu, void *udata) {
    if (vcpu < MAX_VCPUS) {      /* single writer: no locked add needed, just untorn stores */
        uint64_t *c = &counters[vcpu].n;
        __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + (uintptr_t)udata, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&counters[MAX_VCPUS].n, (uintptr_t)udata, __ATOMIC_RELAXED);
    }
}

static void on_tb_atomic(unsigned int vcpu, void *udata) {
    (void)vcpu;
    __atomic_fetch_add(&counters[MAX_VCPUS].n, (uintptr_t)udata, __ATOMIC_RELAXED);
}

static uint64_t total_count(void) {
    uint64_t sum = 0;
    for (int i = 0; i <= MAX_VCPUS; i++) sum += __atomic_load_n(&counters[i].n, __ATOMIC_RELAXED);
    return sum;
}

/* udata = mark index | (instructions of the block from the mark on) << 8: the block's
 * whole count was added when it started, so subtracting those gives the instructions
 * executed strictly before the marked one. */
static void on_mark(unsigned int vcpu, void *udata) {
    (void)vcpu;
    uintptr_t u = (uintptr_t)udata;
    int i = (int)(u & 0xff);
    uint64_t now = total_count() - (uint64_t)(u >> 8);
    int j = __atomic_fetch_add(&nhits[i], 1, __ATOMIC_RELAXED);
    if (j < MAX_HITS) hits[i][j] = now;
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu) {
    (void)id;
    unsigned seen = __atomic_load_n(&max_vcpu_seen, __ATOMIC_RELAXED);
    while (vcpu + 1 > seen && !__atomic_compare_exchange_n(&max_vcpu_seen, &seen, vcpu + 1, 0,
                                                           __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (mode == COUNT_INLINE)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &counters[MAX_VCPUS].n, n);
    else
        qemu_plugin_register_vcpu_tb_exec_cb(tb, mode == COUNT_VCPU ? on_tb_vcpu : on_tb_atomic,
                                             QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    if (!nmarks) return;
    for (size_t k = 0; k < n; k++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, k);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        for (int i = 0; i < nmarks; i++)
            if (va == marks[i])
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                                       (void *)(uintptr_t)(i | (n - k) << 8));
    }
}

static void at_exit(qemu_plugin_id_t id, void *udata) {
    (void)id; (void)udata;
    char line[96];
    FILE *f = out_path[0] ? fopen(out_path, "w") : NULL;
    for (int i = 0; i < nmarks; i++)
        for (int j = 0; j < nhits[i] && j < MAX_HITS; j++) {
            snprintf(line, sizeof line, "mark %d %" PRIu64 "\n", i, hits[i][j]);
            if (f) fputs(line, f); else qemu_plugin_outs(line);
        }
    snprintf(line, sizeof line, "vcpus %u\n", max_vcpu_seen);
    if (f) fputs(line, f); else qemu_plugin_outs(line);
    snprintf(line, sizeof line, "total %" PRIu64 "\n", total_count());
    if (f) { fputs(line, f); fclose(f); } else qemu_plugin_outs(line);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "out=", 4)) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        } else if (!strncmp(argv[i], "mark=", 5) && nmarks < MAX_MARKS) {
            char *end;
            marks[nmarks] = strtoull(argv[i] + 5, &end, 0);
            if (*end) { fprintf(stderr, "insn_count: bad mark %s\n", argv[i]); return -1; }
            nmarks++;
        } else if (!strncmp(argv[i], "counter=", 8)) {
            const char *m = argv[i] + 8;
            if (!strcmp(m, "vcpu")) mode = COUNT_VCPU;
            else if (!strcmp(m, "atomic")) mode = COUNT_ATOMIC;
            else if (!strcmp(m, "inline")) mode = COUNT_INLINE;
            else { fprintf(stderr, "insn_count: bad counter %s (vcpu, atomic, inline)\n", m); return -1; }
        } else {
            fprintf(stderr, "insn_count: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
