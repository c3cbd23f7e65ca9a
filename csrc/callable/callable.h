/*
 * The ChipCallable blob: one orchestration shared object plus its kernels
 * (CoreCallables), with the run signature. Built from a description by
 * simpler_callable_build (callable_build.c, what simpler.ChipCallable.build
 * calls); parsed and validated here (callable.c) before anything is loaded.
 * The field offsets below are the format: both sides use these names.
 *
 * Format version 1, little-endian, every offset from the blob's start:
 *
 *   header (80 bytes)
 *     0  char magic[8] = "SMPLCHIP"     8  u32 version = 1
 *    12  u32 header_size = 80          16  u64 total_size (= blob length)
 *    24  u32 num_args                  28  u32 num_kernels
 *    32  u64 args_offset    -> num_args x {u32 kind, u32 dtype}
 *    40  u64 kernels_offset -> num_kernels x kernel entry (64 bytes)
 *    48  u64 orch_offset    56  u64 orch_size     (the orchestration ELF)
 *    64  u64 orch_entry_offset  72 u32 orch_entry_len   76 u32 flags = 0
 *   kernel entry (64 bytes)
 *     0  u32 func_id   4 u32 core_type   8 u32 num_tensors  12 u32 num_scalars
 *    16  u64 so_offset  24 u64 so_size  (the kernel ELF)
 *    32  u64 sig_offset -> num_tensors x u32 simpler_tag
 *    40  u64 entry_offset  48 u64 name_offset  56 u32 entry_len  60 u32 name_len
 *
 * An arg's kind is a simpler_tag (INPUT, OUTPUT_EXISTING, INOUT, NO_DEP) or
 * SIMPLER_CALLABLE_SCALAR; dtype 0 accepts any dtype. The argument and kernel
 * tables and the binaries are 8-byte aligned, signatures 4-byte; regions
 * lie inside the blob and never overlap, except that kernels may name the
 * very same binary range (a binary held by several kernels is stored
 * once); names are C identifiers. Each binary is an ELF shared object for
 * this host whose headers name only its own bytes (common/elf_check.h).
 */
#ifndef SIMPLER_CALLABLE_CALLABLE_H
#define SIMPLER_CALLABLE_CALLABLE_H

#include <stdint.h>

#include "simpler/simpler.h"

#define CALLABLE_MAGIC "SMPLCHIP"
#define CALLABLE_VERSION 1
#define CALLABLE_HEADER_SIZE 80
#define CALLABLE_KERNEL_ENTRY_SIZE 64
#define CALLABLE_ARG_ENTRY_SIZE 8
#define CALLABLE_ARG_SCALAR SIMPLER_CALLABLE_SCALAR

/* The header's fields, by offset from the blob's start. */
enum callable_header_field {
    CALLABLE_H_MAGIC = 0,
    CALLABLE_H_VERSION = 8,
    CALLABLE_H_HEADER_SIZE = 12,
    CALLABLE_H_TOTAL_SIZE = 16,
    CALLABLE_H_NUM_ARGS = 24,
    CALLABLE_H_NUM_KERNELS = 28,
    CALLABLE_H_ARGS_OFFSET = 32,
    CALLABLE_H_KERNELS_OFFSET = 40,
    CALLABLE_H_ORCH_OFFSET = 48,
    CALLABLE_H_ORCH_SIZE = 56,
    CALLABLE_H_ORCH_ENTRY_OFFSET = 64,
    CALLABLE_H_ORCH_ENTRY_LEN = 72,
    CALLABLE_H_FLAGS = 76
};

/* A kernel entry's fields, by offset from the entry's start. */
enum callable_kernel_field {
    CALLABLE_K_FUNC_ID = 0,
    CALLABLE_K_CORE_TYPE = 4,
    CALLABLE_K_NUM_TENSORS = 8,
    CALLABLE_K_NUM_SCALARS = 12,
    CALLABLE_K_SO_OFFSET = 16,
    CALLABLE_K_SO_SIZE = 24,
    CALLABLE_K_SIG_OFFSET = 32,
    CALLABLE_K_ENTRY_OFFSET = 40,
    CALLABLE_K_NAME_OFFSET = 48,
    CALLABLE_K_ENTRY_LEN = 56,
    CALLABLE_K_NAME_LEN = 60
};

/* An argument-table entry: u32 kind, then u32 dtype. */
enum callable_arg_field { CALLABLE_A_KIND = 0, CALLABLE_A_DTYPE = 4 };

#define CALLABLE_MAX_ARGS SIMPLER_CALLABLE_MAX_ARGS
#define CALLABLE_MAX_KERNELS SIMPLER_CALLABLE_MAX_KERNELS
#define CALLABLE_MAX_KERNEL_TENSORS SIMPLER_MAX_TASK_TENSORS
#define CALLABLE_MAX_KERNEL_SCALARS SIMPLER_MAX_TASK_SCALARS
#define CALLABLE_MAX_NAME SIMPLER_CALLABLE_MAX_NAME
#define CALLABLE_MAX_FUNC_ID SIMPLER_CALLABLE_MAX_FUNC_ID

/* A run-signature entry, as the public builder takes it. */
typedef simpler_callable_arg callable_arg;

typedef struct callable_kernel {
    uint32_t func_id;
    uint32_t core_type;
    uint32_t num_tensors;
    uint32_t num_scalars;
    const uint8_t *so;
    uint64_t so_size;
    uint8_t tags[CALLABLE_MAX_KERNEL_TENSORS];
    char entry[CALLABLE_MAX_NAME + 1];
    char name[CALLABLE_MAX_NAME + 1];
} callable_kernel;

/* A validated view of a blob; the blob must outlive it. */
typedef struct callable_info {
    const uint8_t *blob;
    uint64_t size;
    uint32_t num_args;
    uint32_t num_kernels;
    uint32_t num_tensor_args;
    uint32_t num_scalar_args;
    callable_arg *args;
    callable_kernel *kernels;
    const uint8_t *orch;
    uint64_t orch_size;
    char orch_entry[CALLABLE_MAX_NAME + 1];
} callable_info;

/* The blob's little-endian fields, read and written the same way by the
 * parser, the builder and their tests. */
static inline uint32_t callable_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t callable_rd64(const uint8_t *p)
{
    return (uint64_t)callable_rd32(p) | (uint64_t)callable_rd32(p + 4) << 32;
}

static inline void callable_wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void callable_wr64(uint8_t *p, uint64_t v)
{
    callable_wr32(p, (uint32_t)v);
    callable_wr32(p + 4, (uint32_t)(v >> 32));
}

/* Names in a blob are C identifiers: may byte i of one be c? (The parser
 * and the builder both ask.) */
static inline int callable_name_char_ok(char c, uint32_t i)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
}

/* SIMPLER_E_INVALID_CALLABLE with a message naming the bad field. */
int callable_parse(const void *blob, uint64_t size, callable_info **out);
void callable_info_free(callable_info *info);

/* Index of the kernel with func_id, or -1. */
int32_t callable_find_kernel(const callable_info *info, uint32_t func_id);

#endif
