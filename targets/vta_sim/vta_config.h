/* vta_config.h: hardware configuration (compile-time) and calibrated model constants.
 *
 * Every macro can be overridden with -D. Absent defines give the Pynq-Z1 default VTA
 * (bitstream 1x16_i8w8a32_15_15_18_17 on an xc7z020 at 100 MHz, 64-bit AXI).
 */
#ifndef VTA_CONFIG_H
#define VTA_CONFIG_H

#include <stddef.h>

#ifndef VTA_LOG_BATCH
#define VTA_LOG_BATCH 0
#endif
#ifdef VTA_LOG_BLOCK            /* newer configs: one LOG_BLOCK for both */
#ifndef VTA_LOG_BLOCK_IN
#define VTA_LOG_BLOCK_IN VTA_LOG_BLOCK
#endif
#ifndef VTA_LOG_BLOCK_OUT
#define VTA_LOG_BLOCK_OUT VTA_LOG_BLOCK
#endif
#endif
#ifndef VTA_LOG_BLOCK_IN
#define VTA_LOG_BLOCK_IN 4
#endif
#ifndef VTA_LOG_BLOCK_OUT
#define VTA_LOG_BLOCK_OUT 4
#endif
#ifndef VTA_LOG_UOP_BUFF_SIZE
#define VTA_LOG_UOP_BUFF_SIZE 15      /* log2 bytes: 32 KB */
#endif
#ifndef VTA_LOG_INP_BUFF_SIZE
#define VTA_LOG_INP_BUFF_SIZE 15      /* 32 KB */
#endif
#ifndef VTA_LOG_WGT_BUFF_SIZE
#define VTA_LOG_WGT_BUFF_SIZE 18      /* 256 KB */
#endif
#ifndef VTA_LOG_ACC_BUFF_SIZE
#define VTA_LOG_ACC_BUFF_SIZE 17      /* 128 KB */
#endif
#ifndef VTA_PART
#define VTA_PART xc7z020              /* xc7z020 | xczu3eg | xczu7ev, or index 0 | 1 | 2 */
#endif
/* VTA_CLOCK_MHZ and VTA_DRAM_BYTES_PER_CYCLE default to the part's board
 * (xc7z020: 100 MHz, 8 B/cycle; xczu3eg/xczu7ev: 333 MHz, 16 B/cycle). */
#ifndef VTA_GEMM_II
#define VTA_GEMM_II 1                 /* cycles per GEMM micro-op (HLS: 1; Chisel: more) */
#endif
#ifndef VTA_ALU_II
#define VTA_ALU_II 2                  /* one accumulator read port: one ALU op per 2 cycles */
#endif

/* Model constants. Fitted offline by bench/vta_fit.py: a grid search over these constants
 * that minimises the worst absolute log-error of the simulated GOPS (best schedule) against
 * the five published Pynq-Z1 layers (targets/vta_sim/calibration_points.csv), with and
 * without virtual threads (10 points). Re-run `python bench/vta_fit.py` to refit. Grid (360 points): dram_eff
 * {0.4,0.45,0.5,0.55,0.6,0.7} x dma_lat {20,40,80,160} x row_ovh {16,32,48,64,96} x insn_ovh
 * {4,8,16}, pipe_fill 8, pad_cyc 1, late_release 0. Result: worst error 18.1%, mean |log| 0.091.
 * (An earlier 648-point grid with row_ovh <= 32 reached 19.3% at best.) */
#ifndef VTA_M_DRAM_EFF
#define VTA_M_DRAM_EFF 0.45           /* achieved fraction of the port's peak bytes/cycle */
#endif
#ifndef VTA_M_DMA_LAT
#define VTA_M_DMA_LAT 40.0            /* cycles from DMA issue to first beat */
#endif
#ifndef VTA_M_ROW_OVH
#define VTA_M_ROW_OVH 64.0            /* cycles per 2-D DMA row (one AXI burst each) */
#endif
#ifndef VTA_M_INSN_OVH
#define VTA_M_INSN_OVH 16.0           /* decode cycles per instruction */
#endif
#ifndef VTA_M_PIPE_FILL
#define VTA_M_PIPE_FILL 8.0           /* GEMM/ALU pipeline depth per instruction */
#endif
#ifndef VTA_M_PAD_CYC
#define VTA_M_PAD_CYC 1.0             /* cycles per zero-padding element written */
#endif
#ifndef VTA_M_LATE_RELEASE
#define VTA_M_LATE_RELEASE 0          /* tile's load buffers freed after the epilogue (1) or the GEMMs (0) */
#endif
#ifndef VTA_M_DSP_PER_MAC
#define VTA_M_DSP_PER_MAC 0.5         /* two 8x8 products per DSP48 */
#endif

#define VTA_STR_(x) #x
#define VTA_STR(x) VTA_STR_(x)

#endif
