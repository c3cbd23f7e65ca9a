/*
 * Building a ChipCallable blob from a description (simpler_callable_build),
 * and reading back what the builder's caller needs of a blob
 * (simpler_callable_inspect). The layout is callable.h's; callable_parse
 * must accept whatever this writes (tests/unit/test_layouts.py builds and
 * validates).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callable/callable.h"
#include "common/dtype.h"
#include "common/error.h"
#include "simpler/simpler.h"

#define BAD(...) simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_callable_build: " __VA_ARGS__)

/* Each object at most 256 TiB: with at most 4097 of them no offset can
 * overflow 64 bits. */
#define BUILD_MAX_OBJECT (1ull << 48)

/* A name the parser will take: a C identifier of at most
 * CALLABLE_MAX_NAME bytes, empty (or NULL) only if may_be_empty. */
static int check_name(const char *s, int may_be_empty, const char *what, uint32_t *len_out)
{
    *len_out = 0;
    if (!s)
        return may_be_empty ? SIMPLER_OK : BAD("%s is NULL", what);
    size_t n = strnlen(s, CALLABLE_MAX_NAME + 1);
    if (n > CALLABLE_MAX_NAME)
        return BAD("%s is longer than %d bytes", what, CALLABLE_MAX_NAME);
    if (n == 0 && !may_be_empty)
        return BAD("%s is empty", what);
    for (uint32_t i = 0; i < n; i++)
        if (!callable_name_char_ok(s[i], i))
            return BAD("%s \"%s\" is not a C identifier (byte %u is 0x%02x)", what, s, i, (unsigned char)s[i]);
    *len_out = (uint32_t)n;
    return SIMPLER_OK;
}

static int check_object(const void *p, uint64_t size, const char *what)
{
    if (!p || size == 0)
        return BAD("%s is %s", what, p ? "empty" : "NULL");
    if (size > BUILD_MAX_OBJECT)
        return BAD("%s of %" PRIu64 " bytes is larger than the limit of %llu", what, size, BUILD_MAX_OBJECT);
    return SIMPLER_OK;
}

static int check_signature(const simpler_callable_desc *d)
{
    if (d->num_args > CALLABLE_MAX_ARGS)
        return BAD("%u arguments exceed the limit of %d", d->num_args, CALLABLE_MAX_ARGS);
    if (d->num_args && !d->args)
        return BAD("args is NULL but num_args is %u", d->num_args);
    int scalars = 0;
    for (uint32_t i = 0; i < d->num_args; i++) {
        const simpler_callable_arg *a = &d->args[i];
        if (a->kind == SIMPLER_CALLABLE_SCALAR)
            scalars = 1;
        else if (a->kind != SIMPLER_INPUT && a->kind != SIMPLER_OUTPUT_EXISTING && a->kind != SIMPLER_INOUT &&
                 a->kind != SIMPLER_NO_DEP)
            return BAD("argument %u: kind %u is none of INPUT, OUTPUT_EXISTING, INOUT, NO_DEP, "
                       "SIMPLER_CALLABLE_SCALAR", i, a->kind);
        else if (scalars)
            return BAD("argument %u: tensors must come before scalars", i);
        if (a->dtype != 0 && !simpler_dtype_known(a->dtype))
            return BAD("argument %u: unknown dtype 0x%x", i, a->dtype);
    }
    return SIMPLER_OK;
}

static int check_kernel(const simpler_callable_desc *d, uint32_t k)
{
    const simpler_kernel_desc *kn = &d->kernels[k];
    if (kn->func_id > CALLABLE_MAX_FUNC_ID)
        return BAD("kernel %u: func_id %u is above the limit %d", k, kn->func_id, CALLABLE_MAX_FUNC_ID);
    for (uint32_t j = 0; j < k; j++)
        if (d->kernels[j].func_id == kn->func_id)
            return BAD("kernels %u and %u share func_id %u", j, k, kn->func_id);
    if (kn->core_type != SIMPLER_CORE_AIC && kn->core_type != SIMPLER_CORE_AIV)
        return BAD("kernel %u: core_type %u is neither AIC (%d) nor AIV (%d)", k, kn->core_type, SIMPLER_CORE_AIC,
                   SIMPLER_CORE_AIV);
    if (kn->num_tensors > CALLABLE_MAX_KERNEL_TENSORS || kn->num_scalars > CALLABLE_MAX_KERNEL_SCALARS)
        return BAD("kernel %u: %u tensors and %u scalars exceed the limits %d and %d", k, kn->num_tensors,
                   kn->num_scalars, CALLABLE_MAX_KERNEL_TENSORS, CALLABLE_MAX_KERNEL_SCALARS);
    if (kn->num_tensors && !kn->tags)
        return BAD("kernel %u: tags is NULL but num_tensors is %u", k, kn->num_tensors);
    for (uint32_t t = 0; t < kn->num_tensors; t++)
        if (kn->tags[t] < SIMPLER_INPUT || kn->tags[t] > SIMPLER_NO_DEP)
            return BAD("kernel %u: tensor %u has unknown direction %u", k, t, kn->tags[t]);
    char what[64];
    snprintf(what, sizeof what, "kernel %u binary", k);
    int rc;
    uint32_t len;
    if ((rc = check_object(kn->binary, kn->binary_size, what)))
        return rc;
    snprintf(what, sizeof what, "kernel %u entry name", k);
    if ((rc = check_name(kn->entry, 0, what, &len)))
        return rc;
    snprintf(what, sizeof what, "kernel %u name", k);
    return check_name(kn->name, 1, what, &len);
}

static int check_desc(const simpler_callable_desc *d)
{
    int rc;
    uint32_t len;
    if ((rc = check_object(d->orchestration, d->orchestration_size, "orchestration binary")) ||
        (rc = check_name(d->entry, 0, "orchestration entry name", &len)) || (rc = check_signature(d)))
        return rc;
    if (d->num_kernels > CALLABLE_MAX_KERNELS)
        return BAD("%u kernels exceed the limit of %d", d->num_kernels, CALLABLE_MAX_KERNELS);
    if (d->num_kernels && !d->kernels)
        return BAD("kernels is NULL but num_kernels is %u", d->num_kernels);
    for (uint32_t k = 0; k < d->num_kernels; k++)
        if ((rc = check_kernel(d, k)))
            return rc;
    return SIMPLER_OK;
}

/* Where the next region of len bytes goes, aligned; advances *pos past it. */
static uint64_t place(uint64_t *pos, uint64_t len, uint64_t align)
{
    *pos += (align - *pos % align) % align;
    uint64_t off = *pos;
    *pos += len;
    return off;
}

/* Place (and, with out, write) one region; returns its offset. */
static uint64_t put(uint8_t *out, uint64_t *pos, const void *src, uint64_t len, uint64_t align)
{
    uint64_t off = place(pos, len, align);
    if (out && len)
        memcpy(out + off, src, len);
    return off;
}

static size_t name_len(const char *s) { return s ? strlen(s) : 0; }

/* Index of an earlier kernel holding the same bytes as kernel k, or k. */
static uint32_t first_holder(const simpler_callable_desc *d, uint32_t k)
{
    const simpler_kernel_desc *kn = &d->kernels[k];
    for (uint32_t j = 0; j < k; j++) {
        const simpler_kernel_desc *o = &d->kernels[j];
        if (o->binary_size == kn->binary_size &&
            (o->binary == kn->binary || memcmp(o->binary, kn->binary, kn->binary_size) == 0))
            return j;
    }
    return k;
}

/* One kernel's regions and entry; so_offs remembers where each binary went,
 * so that a later kernel with the same bytes names the same range. */
static void lay_out_kernel(const simpler_callable_desc *d, uint32_t k, uint8_t *out, uint64_t *pos,
                           uint64_t kernels_off, uint64_t *so_offs)
{
    const simpler_kernel_desc *kn = &d->kernels[k];
    uint32_t holder = first_holder(d, k);
    so_offs[k] = holder < k ? so_offs[holder] : put(out, pos, kn->binary, kn->binary_size, 8);
    uint64_t sig_off = place(pos, 4ull * kn->num_tensors, 4);
    uint64_t entry_len = name_len(kn->entry), kname_len = name_len(kn->name);
    uint64_t entry_off = put(out, pos, kn->entry, entry_len, 1);
    uint64_t kname_off = put(out, pos, kn->name, kname_len, 1);
    if (!out)
        return;
    for (uint32_t t = 0; t < kn->num_tensors; t++)
        callable_wr32(out + sig_off + 4ull * t, kn->tags[t]);
    uint8_t *e = out + kernels_off + (uint64_t)k * CALLABLE_KERNEL_ENTRY_SIZE;
    callable_wr32(e + CALLABLE_K_FUNC_ID, kn->func_id);
    callable_wr32(e + CALLABLE_K_CORE_TYPE, kn->core_type);
    callable_wr32(e + CALLABLE_K_NUM_TENSORS, kn->num_tensors);
    callable_wr32(e + CALLABLE_K_NUM_SCALARS, kn->num_scalars);
    callable_wr64(e + CALLABLE_K_SO_OFFSET, so_offs[k]);
    callable_wr64(e + CALLABLE_K_SO_SIZE, kn->binary_size);
    callable_wr64(e + CALLABLE_K_SIG_OFFSET, sig_off);
    callable_wr64(e + CALLABLE_K_ENTRY_OFFSET, entry_off);
    callable_wr64(e + CALLABLE_K_NAME_OFFSET, kname_off);
    callable_wr32(e + CALLABLE_K_ENTRY_LEN, (uint32_t)entry_len);
    callable_wr32(e + CALLABLE_K_NAME_LEN, (uint32_t)kname_len);
}

/* The whole blob: header, argument table, kernel table, orchestration and
 * its entry name, then each kernel's binary (once per distinct content),
 * signature and names. With out NULL only the size is worked out. */
static uint64_t lay_out(const simpler_callable_desc *d, uint8_t *out, uint64_t *so_offs)
{
    uint64_t pos = CALLABLE_HEADER_SIZE;
    uint64_t args_off = place(&pos, (uint64_t)d->num_args * CALLABLE_ARG_ENTRY_SIZE, 8);
    uint64_t kernels_off = place(&pos, (uint64_t)d->num_kernels * CALLABLE_KERNEL_ENTRY_SIZE, 8);
    uint64_t orch_off = put(out, &pos, d->orchestration, d->orchestration_size, 8);
    uint64_t entry_len = name_len(d->entry);
    uint64_t entry_off = put(out, &pos, d->entry, entry_len, 1);
    for (uint32_t k = 0; k < d->num_kernels; k++)
        lay_out_kernel(d, k, out, &pos, kernels_off, so_offs);
    if (!out)
        return pos;
    for (uint32_t i = 0; i < d->num_args; i++) {
        uint8_t *a = out + args_off + (uint64_t)i * CALLABLE_ARG_ENTRY_SIZE;
        callable_wr32(a + CALLABLE_A_KIND, d->args[i].kind);
        callable_wr32(a + CALLABLE_A_DTYPE, d->args[i].dtype);
    }
    memcpy(out + CALLABLE_H_MAGIC, CALLABLE_MAGIC, 8);
    callable_wr32(out + CALLABLE_H_VERSION, CALLABLE_VERSION);
    callable_wr32(out + CALLABLE_H_HEADER_SIZE, CALLABLE_HEADER_SIZE);
    callable_wr64(out + CALLABLE_H_TOTAL_SIZE, pos);
    callable_wr32(out + CALLABLE_H_NUM_ARGS, d->num_args);
    callable_wr32(out + CALLABLE_H_NUM_KERNELS, d->num_kernels);
    callable_wr64(out + CALLABLE_H_ARGS_OFFSET, args_off);
    callable_wr64(out + CALLABLE_H_KERNELS_OFFSET, kernels_off);
    callable_wr64(out + CALLABLE_H_ORCH_OFFSET, orch_off);
    callable_wr64(out + CALLABLE_H_ORCH_SIZE, d->orchestration_size);
    callable_wr64(out + CALLABLE_H_ORCH_ENTRY_OFFSET, entry_off);
    callable_wr32(out + CALLABLE_H_ORCH_ENTRY_LEN, (uint32_t)entry_len);
    callable_wr32(out + CALLABLE_H_FLAGS, 0);
    return pos;
}

int simpler_callable_build(const simpler_callable_desc *desc, void *out, uint64_t capacity, uint64_t *size_out)
{
    if (!size_out)
        return BAD("size_out is NULL");
    *size_out = 0;
    if (!desc)
        return BAD("desc is NULL");
    int rc = check_desc(desc);
    if (rc)
        return rc;
    uint64_t *so_offs = calloc(desc->num_kernels + 1ull, sizeof *so_offs);
    if (!so_offs)
        return simpler_fail(SIMPLER_E_NO_HOST_MEMORY, "simpler_callable_build: out of host memory");
    uint64_t size = lay_out(desc, NULL, so_offs);
    *size_out = size;
    if (out && capacity < size) {
        rc = BAD("a buffer of %" PRIu64 " bytes is too small: the blob needs %" PRIu64, capacity, size);
    } else if (out) {
        memset(out, 0, size);   /* padding and unset fields read as 0 */
        lay_out(desc, out, so_offs);
    }
    free(so_offs);
    return rc;
}

int simpler_callable_inspect(const void *blob, uint64_t size, simpler_callable_summary *out,
                             simpler_callable_arg *args, uint32_t max_args)
{
    if (!out)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_callable_inspect: out is NULL");
    if (max_args && !args)
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_callable_inspect: args is NULL but max_args is %u",
                            max_args);
    callable_info *info;
    int rc = callable_parse(blob, size, &info);
    if (rc)
        return rc;
    *out = (simpler_callable_summary){.num_args = info->num_args, .num_kernels = info->num_kernels,
                                      .num_tensor_args = info->num_tensor_args,
                                      .num_scalar_args = info->num_scalar_args,
                                      .orchestration_size = info->orch_size};
    for (uint32_t i = 0; i < info->num_args && i < max_args; i++)
        args[i] = info->args[i];
    callable_info_free(info);
    return SIMPLER_OK;
}

int simpler_callable_kernels(const void *blob, uint64_t size, simpler_callable_kernel_info *out,
                             uint32_t max_kernels, uint32_t *count_out)
{
    if (!count_out || (max_kernels && !out))
        return simpler_fail(SIMPLER_E_INVALID_ARGUMENT, "simpler_callable_kernels: %s is NULL",
                            count_out ? "out" : "count_out");
    callable_info *info;
    int rc = callable_parse(blob, size, &info);
    if (rc)
        return rc;
    *count_out = info->num_kernels;
    for (uint32_t i = 0; i < info->num_kernels && i < max_kernels; i++) {
        const callable_kernel *k = &info->kernels[i];
        out[i] = (simpler_callable_kernel_info){.func_id = k->func_id, .core_type = k->core_type};
        /* C callers may build a kernel without a name: it goes by its entry then */
        snprintf(out[i].name, sizeof out[i].name, "%s", k->name[0] ? k->name : k->entry);
    }
    callable_info_free(info);
    return SIMPLER_OK;
}
