#include "callable/callable.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dtype.h"
#include "common/elf_check.h"
#include "common/error.h"
#include "simpler/simpler.h"

#define BAD(...) simpler_fail(SIMPLER_E_INVALID_CALLABLE, "invalid callable: " __VA_ARGS__)

typedef struct region {
    uint64_t off, len;
    int shareable;          /* a kernel binary: kernels may share one */
    char what[48];
} region;

typedef struct regions {
    region *r;
    uint32_t n;
} regions;

/* Check one region lies inside the blob and remember it for the overlap
 * check. align 0 means any alignment. */
static int add_region(regions *rs, uint64_t blob_size, uint64_t off, uint64_t len, uint64_t align,
                      const char *what)
{
    if (len == 0)
        return SIMPLER_OK;
    if (off < CALLABLE_HEADER_SIZE || off > blob_size || len > blob_size - off)
        return BAD("%s [offset %" PRIu64 ", %" PRIu64 " bytes] lies outside the blob of %" PRIu64 " bytes",
                   what, off, len, blob_size);
    if (align && off % align)
        return BAD("%s offset %" PRIu64 " is not %" PRIu64 "-byte aligned", what, off, align);
    region *r = &rs->r[rs->n++];
    r->off = off;
    r->len = len;
    strncpy(r->what, what, sizeof r->what - 1);
    r->what[sizeof r->what - 1] = '\0';
    return SIMPLER_OK;
}

static int cmp_region(const void *a, const void *b)
{
    const region *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Sorted by offset then length, identical ranges sit side by side: two
 * kernel binaries may be the very same range (one object stored once for
 * several kernels); any other overlap is an error. */
static int check_overlaps(regions *rs)
{
    qsort(rs->r, rs->n, sizeof *rs->r, cmp_region);
    for (uint32_t i = 1; i < rs->n; i++) {
        const region *a = &rs->r[i - 1], *b = &rs->r[i];
        if (a->shareable && b->shareable && a->off == b->off && a->len == b->len)
            continue;
        if (a->off + a->len > b->off)
            return BAD("%s overlaps %s", a->what, b->what);
    }
    return SIMPLER_OK;
}

/* Copy a name out of the blob; it must be a C identifier. */
static int read_name(const uint8_t *blob, uint64_t off, uint32_t len, char *out, const char *what)
{
    for (uint32_t i = 0; i < len; i++) {
        char c = (char)blob[off + i];
        if (!callable_name_char_ok(c, i))
            return BAD("%s is not a C identifier (byte %u is 0x%02x)", what, i, (unsigned char)c);
        out[i] = c;
    }
    out[len] = '\0';
    return SIMPLER_OK;
}

/* The object's ELF structure against its bytes (common/elf_check.h), so
 * that nothing the loader reads lies outside them. */
static int check_elf(const uint8_t *p, uint64_t size, const char *what)
{
    char why[ELF_CHECK_WHY_MAX];
    if (elf_check(p, size, why, sizeof why) != 0)
        return BAD("%s: %s", what, why);
    return SIMPLER_OK;
}

/* 0 in a signature accepts any dtype. */
static int valid_dtype(uint32_t d) { return d == 0 || simpler_dtype_known(d); }

/* A kernel entry's fields and regions; contents are checked after the
 * whole layout is known to be sound. offs: binary, signature, entry name,
 * name; lens: entry name, name. */
static int parse_kernel_layout(callable_info *info, regions *rs, uint32_t k, uint64_t offs[4], uint32_t lens[2])
{
    const uint8_t *b = info->blob;
    const uint8_t *e = b + callable_rd64(b + CALLABLE_H_KERNELS_OFFSET) + (uint64_t)k * CALLABLE_KERNEL_ENTRY_SIZE;
    callable_kernel *kn = &info->kernels[k];
    char what[48];
    kn->func_id = callable_rd32(e + CALLABLE_K_FUNC_ID);
    kn->core_type = callable_rd32(e + CALLABLE_K_CORE_TYPE);
    kn->num_tensors = callable_rd32(e + CALLABLE_K_NUM_TENSORS);
    kn->num_scalars = callable_rd32(e + CALLABLE_K_NUM_SCALARS);
    kn->so_size = callable_rd64(e + CALLABLE_K_SO_SIZE);
    offs[0] = callable_rd64(e + CALLABLE_K_SO_OFFSET);
    offs[1] = callable_rd64(e + CALLABLE_K_SIG_OFFSET);
    offs[2] = callable_rd64(e + CALLABLE_K_ENTRY_OFFSET);
    offs[3] = callable_rd64(e + CALLABLE_K_NAME_OFFSET);
    lens[0] = callable_rd32(e + CALLABLE_K_ENTRY_LEN);
    lens[1] = callable_rd32(e + CALLABLE_K_NAME_LEN);

    if (kn->func_id > CALLABLE_MAX_FUNC_ID)
        return BAD("kernel %u: func_id %u is above the limit %u", k, kn->func_id, CALLABLE_MAX_FUNC_ID);
    if (kn->core_type != SIMPLER_CORE_AIC && kn->core_type != SIMPLER_CORE_AIV)
        return BAD("kernel %u: core_type %u is neither AIC (0) nor AIV (1)", k, kn->core_type);
    if (kn->num_tensors > CALLABLE_MAX_KERNEL_TENSORS || kn->num_scalars > CALLABLE_MAX_KERNEL_SCALARS)
        return BAD("kernel %u: %u tensors and %u scalars exceed the limits %u and %u", k, kn->num_tensors,
                   kn->num_scalars, CALLABLE_MAX_KERNEL_TENSORS, CALLABLE_MAX_KERNEL_SCALARS);
    if (lens[0] == 0 || lens[0] > CALLABLE_MAX_NAME || lens[1] > CALLABLE_MAX_NAME)
        return BAD("kernel %u: entry name length %u or name length %u out of range 1..%u", k, lens[0], lens[1],
                   CALLABLE_MAX_NAME);
    int rc;
    snprintf(what, sizeof what, "kernel %u binary", k);
    if ((rc = add_region(rs, info->size, offs[0], kn->so_size, 8, what)))
        return rc;
    if (kn->so_size)
        rs->r[rs->n - 1].shareable = 1;
    snprintf(what, sizeof what, "kernel %u signature", k);
    if ((rc = add_region(rs, info->size, offs[1], (uint64_t)kn->num_tensors * 4, 4, what)))
        return rc;
    snprintf(what, sizeof what, "kernel %u entry name", k);
    if ((rc = add_region(rs, info->size, offs[2], lens[0], 0, what)))
        return rc;
    snprintf(what, sizeof what, "kernel %u name", k);
    return add_region(rs, info->size, offs[3], lens[1], 0, what);
}

static int parse_kernel_content(callable_info *info, uint32_t k, const uint64_t offs[4], const uint32_t lens[2])
{
    const uint8_t *b = info->blob;
    callable_kernel *kn = &info->kernels[k];
    char what[48];
    int rc;
    snprintf(what, sizeof what, "kernel %u (func %u)", k, kn->func_id);
    int checked = 0;    /* the same binary as an earlier kernel's */
    for (uint32_t j = 0; j < k && !checked; j++)
        checked = info->kernels[j].so == b + offs[0] && info->kernels[j].so_size == kn->so_size;
    if (!checked && (rc = check_elf(b + offs[0], kn->so_size, what)))
        return rc;
    kn->so = b + offs[0];
    for (uint32_t t = 0; t < kn->num_tensors; t++) {
        uint32_t tag = callable_rd32(b + offs[1] + 4ull * t);
        if (tag < SIMPLER_INPUT || tag > SIMPLER_NO_DEP)
            return BAD("kernel %u: tensor %u has unknown direction %u", k, t, tag);
        kn->tags[t] = (uint8_t)tag;
    }
    snprintf(what, sizeof what, "kernel %u entry name", k);
    if ((rc = read_name(b, offs[2], lens[0], kn->entry, what)))
        return rc;
    snprintf(what, sizeof what, "kernel %u name", k);
    return read_name(b, offs[3], lens[1], kn->name, what);
}

static int parse(callable_info *info, regions *rs)
{
    const uint8_t *b = info->blob;
    uint64_t size = info->size;
    if (size < CALLABLE_HEADER_SIZE)
        return BAD("blob of %" PRIu64 " bytes is shorter than the %d-byte header (truncated?)", size,
                   CALLABLE_HEADER_SIZE);
    if (memcmp(b + CALLABLE_H_MAGIC, CALLABLE_MAGIC, 8) != 0)
        return BAD("bad magic (not a ChipCallable blob)");
    uint32_t version = callable_rd32(b + CALLABLE_H_VERSION), header_size = callable_rd32(b + CALLABLE_H_HEADER_SIZE);
    if (version != CALLABLE_VERSION)
        return BAD("format version %u is not supported (this build reads version %d)", version,
                   CALLABLE_VERSION);
    if (header_size != CALLABLE_HEADER_SIZE)
        return BAD("header size %u, expected %d", header_size, CALLABLE_HEADER_SIZE);
    uint64_t total = callable_rd64(b + CALLABLE_H_TOTAL_SIZE);
    if (total != size)
        return BAD("header says %" PRIu64 " bytes but the blob has %" PRIu64 "%s", total, size,
                   total > size ? " (truncated)" : "");
    info->num_args = callable_rd32(b + CALLABLE_H_NUM_ARGS);
    info->num_kernels = callable_rd32(b + CALLABLE_H_NUM_KERNELS);
    if (info->num_args > CALLABLE_MAX_ARGS)
        return BAD("%u arguments exceed the limit of %d", info->num_args, CALLABLE_MAX_ARGS);
    if (info->num_kernels > CALLABLE_MAX_KERNELS)
        return BAD("%u kernels exceed the limit of %d", info->num_kernels, CALLABLE_MAX_KERNELS);
    uint64_t args_off = callable_rd64(b + CALLABLE_H_ARGS_OFFSET), kernels_off = callable_rd64(b + CALLABLE_H_KERNELS_OFFSET);
    uint64_t orch_off = callable_rd64(b + CALLABLE_H_ORCH_OFFSET), orch_entry_off = callable_rd64(b + CALLABLE_H_ORCH_ENTRY_OFFSET);
    uint32_t orch_entry_len = callable_rd32(b + CALLABLE_H_ORCH_ENTRY_LEN), flags = callable_rd32(b + CALLABLE_H_FLAGS);
    info->orch_size = callable_rd64(b + CALLABLE_H_ORCH_SIZE);
    if (flags != 0)
        return BAD("unknown flags 0x%x", flags);
    if (info->orch_size == 0)
        return BAD("no orchestration binary");
    if (orch_entry_len == 0 || orch_entry_len > CALLABLE_MAX_NAME)
        return BAD("orchestration entry name length %u out of range 1..%d", orch_entry_len,
                   CALLABLE_MAX_NAME);

    rs->r = calloc(4 + 4ull * info->num_kernels, sizeof *rs->r);
    info->args = calloc(info->num_args + 1, sizeof *info->args);
    info->kernels = calloc(info->num_kernels + 1, sizeof *info->kernels);
    if (!rs->r || !info->args || !info->kernels)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "callable parse: out of host memory");

    int rc;
    if ((rc = add_region(rs, size, args_off, (uint64_t)info->num_args * CALLABLE_ARG_ENTRY_SIZE, 8, "argument table")) ||
        (rc = add_region(rs, size, kernels_off, (uint64_t)info->num_kernels * CALLABLE_KERNEL_ENTRY_SIZE, 8,
                         "kernel table")) ||
        (rc = add_region(rs, size, orch_off, info->orch_size, 8, "orchestration binary")) ||
        (rc = add_region(rs, size, orch_entry_off, orch_entry_len, 0, "orchestration entry name")))
        return rc;
    uint64_t(*koffs)[4] = calloc(info->num_kernels + 1ull, sizeof *koffs);
    uint32_t(*klens)[2] = calloc(info->num_kernels + 1ull, sizeof *klens);
    if (!koffs || !klens) {
        free(koffs);
        free(klens);
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "callable parse: out of host memory");
    }
    for (uint32_t k = 0; k < info->num_kernels && !rc; k++)
        rc = parse_kernel_layout(info, rs, k, koffs[k], klens[k]);
    if (!rc)
        rc = check_overlaps(rs);
    if (!rc)
        rc = check_elf(b + orch_off, info->orch_size, "orchestration");
    if (!rc)
        rc = read_name(b, orch_entry_off, orch_entry_len, info->orch_entry, "orchestration entry name");
    for (uint32_t k = 0; k < info->num_kernels && !rc; k++) {
        rc = parse_kernel_content(info, k, koffs[k], klens[k]);
        for (uint32_t j = 0; j < k && !rc; j++)
            if (info->kernels[j].func_id == info->kernels[k].func_id)
                rc = BAD("kernels %u and %u share func_id %u", j, k, info->kernels[k].func_id);
    }
    free(koffs);
    free(klens);
    if (rc)
        return rc;
    info->orch = b + orch_off;

    for (uint32_t i = 0; i < info->num_args; i++) {
        callable_arg *a = &info->args[i];
        a->kind = callable_rd32(b + args_off + (uint64_t)CALLABLE_ARG_ENTRY_SIZE * i + CALLABLE_A_KIND);
        a->dtype = callable_rd32(b + args_off + (uint64_t)CALLABLE_ARG_ENTRY_SIZE * i + CALLABLE_A_DTYPE);
        if (a->kind == CALLABLE_ARG_SCALAR) {
            info->num_scalar_args++;
        } else if (a->kind == SIMPLER_INPUT || a->kind == SIMPLER_OUTPUT_EXISTING ||
                   a->kind == SIMPLER_INOUT || a->kind == SIMPLER_NO_DEP) {
            if (info->num_scalar_args)
                return BAD("argument %u: tensors must come before scalars", i);
            info->num_tensor_args++;
        } else {
            return BAD("argument %u: unknown kind %u", i, a->kind);
        }
        if (!valid_dtype(a->dtype))
            return BAD("argument %u: unknown dtype 0x%x", i, a->dtype);
    }
    return SIMPLER_OK;
}

int callable_parse(const void *blob, uint64_t size, callable_info **out)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "callable parse: out is NULL");
    *out = NULL;
    if (!blob)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "callable parse: blob is NULL");
    callable_info *info = calloc(1, sizeof *info);
    if (!info)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "callable parse: out of host memory");
    info->blob = blob;
    info->size = size;
    regions rs = {0};
    int rc = parse(info, &rs);
    free(rs.r);
    if (rc) {
        callable_info_free(info);
        return rc;
    }
    *out = info;
    return SIMPLER_OK;
}

void callable_info_free(callable_info *info)
{
    if (!info)
        return;
    free(info->args);
    free(info->kernels);
    free(info);
}

int32_t callable_find_kernel(const callable_info *info, uint32_t func_id)
{
    for (uint32_t k = 0; k < info->num_kernels; k++)
        if (info->kernels[k].func_id == func_id)
            return (int32_t)k;
    return -1;
}
