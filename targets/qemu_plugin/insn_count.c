/* insn_count.c: a QEMU TCG plugin that counts executed guest instructions for `tune`.
 *
 *   qemu-aarch64 -plugin insn_count.so,out=FILE[,mark=0xADDR]... prog args
 *
 * Every executed translation block adds its instruction count to a counter (an inline
 * add: no helper call per block). Each `mark` address gets an exec callback on the
 * instruction there; every time it runs, the running count is logged, so the driver can
 * cut out the region between two marks (the kernel: from the entry of tune_kernel to the
 * harness's next clock read). At exit the plugin writes to FILE (or QEMU's log):
 *
 *     mark <index> <count>     one line per execution of mark number <index> (first 64 per mark)
 *     total <count>            every guest instruction executed
 *
 * A mark's count is the number of instructions executed before the marked instruction,
 * so the difference between two marks is exact and deterministic.
 * Single-threaded guests only (the counter is not per vCPU).
 */
#include "tune_qemu_plugin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_MARKS 8
#define MAX_HITS 64

static uint64_t count;                      /* guest instructions executed so far */
static uint64_t marks[MAX_MARKS];
static int nmarks;
static uint64_t hits[MAX_MARKS][MAX_HITS];
static int nhits[MAX_MARKS];
static char out_path[4096];

/* udata = mark index | (instructions of the block from the mark on) << 8: the block's
 * whole count was added when it started, so subtracting those gives the instructions
 * executed strictly before the marked one. */
static void on_mark(unsigned int vcpu, void *udata) {
    (void)vcpu;
    uintptr_t u = (uintptr_t)udata;
    int i = (int)(u & 0xff);
    if (nhits[i] < MAX_HITS) hits[i][nhits[i]] = count - (uint64_t)(u >> 8);
    nhits[i]++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &count, n);
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
    snprintf(line, sizeof line, "total %" PRIu64 "\n", count);
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
        } else {
            fprintf(stderr, "insn_count: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
