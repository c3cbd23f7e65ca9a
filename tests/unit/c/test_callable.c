/*
 * Unit tests for the ChipCallable blob parser (csrc/callable/callable.c).
 *
 * Blobs are assembled here field by field (so tests can aim at each),
 * then broken one field at a time: every malformed blob must be refused with
 * SIMPLER_E_INVALID_CALLABLE and a message, and nothing may read outside the
 * blob (each blob under test sits in a heap block of exactly its size, so
 * AddressSanitizer reports any stray read).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callable/callable.h"
#include "check.h"
#include "common/elf_check.h"
#include "common/error.h"
#include "simpler/simpler.h"

/* ---- blob builder ---------------------------------------------------- */

#define MAX_SPEC_ARGS 16
#define MAX_SPEC_KERNELS 4
#define MAX_SPEC_TENSORS 8

typedef struct kernel_spec {
    uint32_t func_id, core_type;
    uint32_t num_tensors, num_scalars;
    uint32_t tags[MAX_SPEC_TENSORS];
    uint32_t so_size;
    const char *entry, *name;
} kernel_spec;

typedef struct blob_spec {
    uint32_t num_args;
    uint32_t kinds[MAX_SPEC_ARGS], dtypes[MAX_SPEC_ARGS];
    uint32_t num_kernels;
    kernel_spec k[MAX_SPEC_KERNELS];
    uint32_t orch_size;
    const char *orch_entry;
} blob_spec;

/* Where build() put each region, so tests can aim their damage. */
typedef struct layout {
    uint64_t size;
    uint64_t args_off, kernels_off, orch_off, orch_entry_off;
    uint64_t so_off[MAX_SPEC_KERNELS], sig_off[MAX_SPEC_KERNELS];
    uint64_t entry_off[MAX_SPEC_KERNELS], name_off[MAX_SPEC_KERNELS];
} layout;

/* Append len bytes (zeroed if src is NULL) after padding to align. */
static uint64_t put(uint8_t *buf, uint64_t *pos, const void *src, uint64_t len, uint64_t align)
{
    while (*pos % align)
        buf[(*pos)++] = 0;
    uint64_t off = *pos;
    if (src)
        memcpy(buf + off, src, len);
    else
        memset(buf + off, 0, len);
    *pos += len;
    return off;
}

/* The smallest shared object elf_check accepts, laid out by hand so tests
 * can aim at each field: ELF header, a writable PT_LOAD over the whole
 * object and a PT_DYNAMIC, the dynamic table (hash, string and symbol
 * tables), a null symbol, a one-bucket hash table, an empty string table,
 * then the section names and two section headers. */
enum {
    ELF_PH = 64, ELF_DYN = 176, ELF_SYM = 272, ELF_HASH = 296, ELF_STR = 312, ELF_SHSTR = 313,
    ELF_SH = 328, ELF_MIN = 456,
    ELF_DYN_ENTRIES = 6,
};

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void elf_phdr_at(uint8_t *p, uint32_t type, uint32_t flags, uint64_t off, uint64_t size, uint64_t align)
{
    callable_wr32(p, type);
    callable_wr32(p + 4, flags);
    callable_wr64(p + 8, off);    /* offset */
    callable_wr64(p + 16, off);   /* vaddr */
    callable_wr64(p + 24, off);   /* paddr */
    callable_wr64(p + 32, size);  /* filesz */
    callable_wr64(p + 40, size);  /* memsz */
    callable_wr64(p + 48, align);
}

/* A valid object of size bytes (>= ELF_MIN), padded with a pattern. */
static void fake_elf(uint8_t *p, uint32_t size, uint8_t seed)
{
    memset(p, 0, size);
    for (uint32_t i = ELF_MIN; i < size; i++)
        p[i] = (uint8_t)(seed + i);
    memcpy(p, "\x7f" "ELF", 4);
    p[4] = 2;  /* ELFCLASS64 */
    p[5] = 1;  /* ELFDATA2LSB */
    p[6] = 1;  /* EV_CURRENT */
    wr16(p + 16, 3);   /* ET_DYN */
#if defined(__x86_64__)
    wr16(p + 18, 62);
#elif defined(__aarch64__)
    wr16(p + 18, 183);
#else
    wr16(p + 18, 243);
#endif
    callable_wr32(p + 20, 1);
    callable_wr64(p + 32, ELF_PH);
    callable_wr64(p + 40, ELF_SH);
    wr16(p + 52, 64);
    wr16(p + 54, 56);
    wr16(p + 56, 2);
    wr16(p + 58, 64);
    wr16(p + 60, 2);
    wr16(p + 62, 1);
    elf_phdr_at(p + ELF_PH, 1, 6, 0, ELF_MIN, 0x1000);                     /* PT_LOAD, RW */
    elf_phdr_at(p + ELF_PH + 56, 2, 6, ELF_DYN, 16 * ELF_DYN_ENTRIES, 8);  /* PT_DYNAMIC */
    static const uint64_t dyn[ELF_DYN_ENTRIES][2] = {
        {4, ELF_HASH}, {5, ELF_STR}, {6, ELF_SYM}, {10, 1}, {11, 24}, {0, 0}};
    for (int i = 0; i < ELF_DYN_ENTRIES; i++) {
        callable_wr64(p + ELF_DYN + 16 * i, dyn[i][0]);
        callable_wr64(p + ELF_DYN + 16 * i + 8, dyn[i][1]);
    }
    callable_wr32(p + ELF_HASH, 1);       /* one bucket, one chain, both symbol 0 */
    callable_wr32(p + ELF_HASH + 4, 1);
    memcpy(p + ELF_SHSTR, "\0.shstrtab", 11);
    uint8_t *sh = p + ELF_SH + 64;  /* section 1: the section names */
    callable_wr32(sh, 1);
    callable_wr32(sh + 4, 3);             /* SHT_STRTAB */
    callable_wr64(sh + 24, ELF_SHSTR);
    callable_wr64(sh + 32, 11);
    callable_wr64(sh + 48, 1);
}

#define BUILD_CAP 65536

/* Lay out spec into buf (BUILD_CAP bytes); returns the blob size. */
static uint64_t build(const blob_spec *s, uint8_t *buf, layout *lay)
{
    uint64_t pos = 0;
    uint8_t tmp[4096];
    memset(lay, 0, sizeof *lay);
    put(buf, &pos, NULL, CALLABLE_HEADER_SIZE, 1);

    for (uint32_t i = 0; i < s->num_args; i++) {
        callable_wr32(tmp + 8 * i, s->kinds[i]);
        callable_wr32(tmp + 8 * i + 4, s->dtypes[i]);
    }
    lay->args_off = put(buf, &pos, tmp, 8ull * s->num_args, 8);
    lay->kernels_off = put(buf, &pos, NULL, (uint64_t)CALLABLE_KERNEL_ENTRY_SIZE * s->num_kernels, 8);
    fake_elf(tmp, s->orch_size, 0x40);
    lay->orch_off = put(buf, &pos, tmp, s->orch_size, 8);
    lay->orch_entry_off = put(buf, &pos, s->orch_entry, strlen(s->orch_entry), 1);

    for (uint32_t k = 0; k < s->num_kernels; k++) {
        const kernel_spec *ks = &s->k[k];
        fake_elf(tmp, ks->so_size, (uint8_t)(0x10 * k));
        lay->so_off[k] = put(buf, &pos, tmp, ks->so_size, 8);
        for (uint32_t t = 0; t < ks->num_tensors; t++)
            callable_wr32(tmp + 4 * t, ks->tags[t]);
        lay->sig_off[k] = put(buf, &pos, tmp, 4ull * ks->num_tensors, 8);
        lay->entry_off[k] = put(buf, &pos, ks->entry, strlen(ks->entry), 1);
        lay->name_off[k] = put(buf, &pos, ks->name, strlen(ks->name), 1);

        uint8_t *e = buf + lay->kernels_off + (uint64_t)k * CALLABLE_KERNEL_ENTRY_SIZE;
        callable_wr32(e + 0, ks->func_id);
        callable_wr32(e + 4, ks->core_type);
        callable_wr32(e + 8, ks->num_tensors);
        callable_wr32(e + 12, ks->num_scalars);
        callable_wr64(e + 16, lay->so_off[k]);
        callable_wr64(e + 24, ks->so_size);
        callable_wr64(e + 32, lay->sig_off[k]);
        callable_wr64(e + 40, lay->entry_off[k]);
        callable_wr64(e + 48, lay->name_off[k]);
        callable_wr32(e + 56, (uint32_t)strlen(ks->entry));
        callable_wr32(e + 60, (uint32_t)strlen(ks->name));
    }

    memcpy(buf, CALLABLE_MAGIC, 8);
    callable_wr32(buf + 8, CALLABLE_VERSION);
    callable_wr32(buf + 12, CALLABLE_HEADER_SIZE);
    callable_wr64(buf + 16, pos);
    callable_wr32(buf + 24, s->num_args);
    callable_wr32(buf + 28, s->num_kernels);
    callable_wr64(buf + 32, lay->args_off);
    callable_wr64(buf + 40, lay->kernels_off);
    callable_wr64(buf + 48, lay->orch_off);
    callable_wr64(buf + 56, s->orch_size);
    callable_wr64(buf + 64, lay->orch_entry_off);
    callable_wr32(buf + 72, (uint32_t)strlen(s->orch_entry));
    callable_wr32(buf + 76, 0);
    lay->size = pos;
    return pos;
}

/* The callable most tests start from: 3 tensors + 2 scalars, 2 kernels. */
static blob_spec full_spec(void)
{
    blob_spec s = {
        .num_args = 5,
        .kinds = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING, CALLABLE_ARG_SCALAR,
                  CALLABLE_ARG_SCALAR},
        .dtypes = {SIMPLER_DTYPE_FLOAT32, 0, SIMPLER_DTYPE_FLOAT16, SIMPLER_DTYPE_INT64, 0},
        .num_kernels = 2,
        .k = {{.func_id = 0, .core_type = SIMPLER_CORE_AIV, .num_tensors = 3, .num_scalars = 1,
               .tags = {SIMPLER_INPUT, SIMPLER_INPUT, SIMPLER_OUTPUT}, .so_size = ELF_MIN + 8,
               .entry = "kernel", .name = "vector_add"},
              {.func_id = 65535, .core_type = SIMPLER_CORE_AIC, .num_tensors = 4, .num_scalars = 0,
               .tags = {SIMPLER_INOUT, SIMPLER_OUTPUT_EXISTING, SIMPLER_NO_DEP, SIMPLER_INPUT},
               .so_size = ELF_MIN + 64, .entry = "_mm2", .name = "Matmul_x9"}},
        .orch_size = ELF_MIN + 40,
        .orch_entry = "orchestrate",
    };
    return s;
}

static blob_spec minimal_spec(void)
{
    blob_spec s = {.num_args = 0, .num_kernels = 0, .orch_size = ELF_MIN, .orch_entry = "o"};
    return s;
}

/* A heap copy of exactly len bytes, so any read past the end is caught. */
static uint8_t *exact_copy(const uint8_t *src, uint64_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    memcpy(p, src, len);
    return p;
}

/* Parse len bytes of buf from an exact-size copy; returns the code. */
static int parse_copy(const uint8_t *buf, uint64_t len, callable_info **out)
{
    uint8_t *copy = exact_copy(buf, len);
    callable_info *info = (callable_info *)0x1;
    simpler_clear_error();
    int rc = callable_parse(copy, len, &info);
    if (out && rc == SIMPLER_OK) {
        *out = info;
        return rc; /* caller frees info, then the copy via info->blob */
    }
    if (rc == SIMPLER_OK)
        callable_info_free(info);
    else
        CHECK(info == NULL);
    free(copy);
    return rc;
}

static void free_parsed(callable_info *info)
{
    void *blob = (void *)info->blob;
    callable_info_free(info);
    free(blob);
}

/* Expect rejection with a message mentioning `needle`. */
#define EXPECT_BAD(buf, len, needle) expect_bad(buf, len, needle, __FILE__, __LINE__)

static void expect_bad(const uint8_t *buf, uint64_t len, const char *needle, const char *file, int line)
{
    int rc = parse_copy(buf, len, NULL);
    const char *msg = simpler_last_error();
    if (!check_one(rc == SIMPLER_E_INVALID_CALLABLE, file, line, "rc == SIMPLER_E_INVALID_CALLABLE"))
        fprintf(stderr, "    got rc %d, message \"%s\"\n", rc, msg);
    else if (!check_one(strncmp(msg, "invalid callable: ", 18) == 0 && strstr(msg, needle) != NULL, file, line,
                        "message names the problem"))
        fprintf(stderr, "    wanted \"%s\" in \"%s\"\n", needle, msg);
}

#define EXPECT_OK(buf, len) expect_ok(buf, len, __FILE__, __LINE__)

static void expect_ok(const uint8_t *buf, uint64_t len, const char *file, int line)
{
    int rc = parse_copy(buf, len, NULL);
    if (!check_one(rc == SIMPLER_OK, file, line, "rc == SIMPLER_OK"))
        fprintf(stderr, "    got rc %d, message \"%s\"\n", rc, simpler_last_error());
}

/* ---- the public builder (callable_build.c) ---------------------------- */

/* Build desc into a heap block of exactly its size (ASan catches a write
 * past it); returns the blob, or NULL with *rc the builder's code. */
static uint8_t *build_exact(const simpler_callable_desc *d, uint64_t *n, int *rc)
{
    *rc = simpler_callable_build(d, NULL, 0, n);
    if (*rc)
        return NULL;
    uint8_t *out = malloc(*n);
    if (!out)
        exit(2);
    *rc = simpler_callable_build(d, out, *n, n);
    return out;
}

/* What the builder writes, the parser takes back field for field; equal
 * binaries (in different buffers) are stored once. */
static void test_builder_round_trip(void)
{
    static uint8_t orch[ELF_MIN + 40], k0[ELF_MIN + 8], k0_again[ELF_MIN + 8], k2[ELF_MIN + 16];
    fake_elf(orch, sizeof orch, 1);
    fake_elf(k0, sizeof k0, 2);
    memcpy(k0_again, k0, sizeof k0);
    fake_elf(k2, sizeof k2, 3);
    static const uint32_t tags[3] = {SIMPLER_INPUT, SIMPLER_OUTPUT, SIMPLER_NO_DEP};
    simpler_kernel_desc ks[3] = {
        {7, SIMPLER_CORE_AIV, 3, 1, tags, k0, sizeof k0, "add", "add_f32"},
        {9, SIMPLER_CORE_AIV, 2, 0, tags, k0_again, sizeof k0_again, "add", NULL},
        {11, SIMPLER_CORE_AIC, 0, 2, NULL, k2, sizeof k2, "mm", ""},
    };
    simpler_callable_arg args[3] = {{SIMPLER_INPUT, SIMPLER_DTYPE_FLOAT32}, {SIMPLER_INOUT, 0},
                                    {SIMPLER_CALLABLE_SCALAR, SIMPLER_DTYPE_INT64}};
    simpler_callable_desc d = {orch, sizeof orch, "orchestrate", 3, 3, args, ks};
    uint64_t n;
    int rc;
    uint8_t *blob = build_exact(&d, &n, &rc);
    if (!CHECKF(rc == SIMPLER_OK && blob, "rc %d: %s", rc, simpler_last_error())) {
        free(blob);
        return;
    }
    callable_info *info = NULL;
    rc = parse_copy(blob, n, &info);
    if (CHECKF(rc == SIMPLER_OK, "rc %d: %s", rc, simpler_last_error())) {
        CHECK(info->num_args == 3 && info->num_tensor_args == 2 && info->num_scalar_args == 1);
        CHECK(info->args[0].kind == SIMPLER_INPUT && info->args[0].dtype == SIMPLER_DTYPE_FLOAT32);
        CHECK(info->args[2].kind == SIMPLER_CALLABLE_SCALAR && info->args[2].dtype == SIMPLER_DTYPE_INT64);
        CHECK(info->orch_size == sizeof orch && memcmp(info->orch, orch, sizeof orch) == 0);
        CHECK(strcmp(info->orch_entry, "orchestrate") == 0);
        CHECK(info->num_kernels == 3);
        for (uint32_t k = 0; k < 3 && k < info->num_kernels; k++) {
            const callable_kernel *kn = &info->kernels[k];
            CHECKF(kn->func_id == ks[k].func_id && kn->core_type == ks[k].core_type &&
                       kn->num_tensors == ks[k].num_tensors && kn->num_scalars == ks[k].num_scalars &&
                       kn->so_size == ks[k].binary_size && memcmp(kn->so, ks[k].binary, kn->so_size) == 0,
                   "kernel %u", k);
            for (uint32_t t = 0; t < kn->num_tensors; t++)
                CHECK(kn->tags[t] == tags[t]);
            CHECK(strcmp(kn->entry, ks[k].entry) == 0);
            CHECK(strcmp(kn->name, ks[k].name ? ks[k].name : "") == 0);
        }
        CHECK(info->kernels[0].so == info->kernels[1].so);   /* stored once */
        CHECK(info->kernels[2].so != info->kernels[0].so);
        free_parsed(info);
    }
    /* One byte short: refused, nothing written past it. */
    uint8_t *short_buf = malloc(n - 1);
    uint64_t n2 = 0;
    CHECK(simpler_callable_build(&d, short_buf, n - 1, &n2) == SIMPLER_E_INVALID_ARGUMENT && n2 == n);
    CHECK(strstr(simpler_last_error(), "too small") != NULL);
    free(short_buf);
    /* The summary reader says the same. */
    simpler_callable_summary sum;
    simpler_callable_arg got[2];
    CHECK(simpler_callable_inspect(blob, n, &sum, got, 2) == SIMPLER_OK);
    CHECK(sum.num_args == 3 && sum.num_kernels == 3 && sum.orchestration_size == sizeof orch);
    CHECK(got[1].kind == SIMPLER_INOUT && got[1].dtype == 0);
    CHECK(simpler_callable_inspect(blob, n - 1, &sum, NULL, 0) == SIMPLER_E_INVALID_CALLABLE);
    free(blob);
}

/* Random valid descriptions: every one builds, and the parser takes it. */
static void test_builder_random(void)
{
    static uint8_t objs[4][ELF_MIN + 64];
    for (int i = 0; i < 4; i++)
        fake_elf(objs[i], ELF_MIN + 16u * (unsigned)i, (uint8_t)(i + 5));
    static const char *names[] = {"a", "_k", "kernel_9", "Z"};
    unsigned long long seed = 42;
    unsigned failures = 0;
    for (int round = 0; round < 300; round++) {
        uint32_t tags[8];
        simpler_kernel_desc ks[8];
        simpler_callable_arg args[12];
        uint32_t nk = (uint32_t)(check_rand(&seed) % 9), na = (uint32_t)(check_rand(&seed) % 13);
        for (uint32_t t = 0; t < 8; t++)
            tags[t] = 1 + (uint32_t)(check_rand(&seed) % 5);
        for (uint32_t k = 0; k < nk; k++) {
            int o = (int)(check_rand(&seed) % 4);
            ks[k] = (simpler_kernel_desc){k * 3 + (uint32_t)(check_rand(&seed) % 3), (uint32_t)(check_rand(&seed) % 2),
                                          (uint32_t)(check_rand(&seed) % 9), (uint32_t)(check_rand(&seed) % 4), tags,
                                          objs[o], ELF_MIN + 16u * (unsigned)o, names[check_rand(&seed) % 4],
                                          check_rand(&seed) % 2 ? names[check_rand(&seed) % 4] : NULL};
        }
        uint32_t first_scalar = (uint32_t)(check_rand(&seed) % (na + 1));
        static const uint32_t kinds[4] = {SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING, SIMPLER_INOUT, SIMPLER_NO_DEP};
        for (uint32_t i = 0; i < na; i++)
            args[i] = (simpler_callable_arg){i < first_scalar ? kinds[check_rand(&seed) % 4] : SIMPLER_CALLABLE_SCALAR,
                                             check_rand(&seed) % 2 ? SIMPLER_DTYPE_FLOAT16 : 0};
        simpler_callable_desc d = {objs[check_rand(&seed) % 4], ELF_MIN, "o", na, nk, args, ks};
        uint64_t n;
        int rc;
        uint8_t *blob = build_exact(&d, &n, &rc);
        if (rc == SIMPLER_OK)
            rc = parse_copy(blob, n, NULL);
        if (rc != SIMPLER_OK && failures++ < 3)
            fprintf(stderr, "    round %d: rc %d: %s\n", round, rc, simpler_last_error());
        free(blob);
    }
    CHECKF(failures == 0, "%u random descriptions failed", failures);
}

/* ---- valid blobs ----------------------------------------------------- */

static void test_valid_full(void)
{
    static uint8_t buf[BUILD_CAP];
    layout lay;
    blob_spec s = full_spec();
    uint64_t n = build(&s, buf, &lay);
    callable_info *info = NULL;
    int rc = parse_copy(buf, n, &info);
    if (!CHECKF(rc == SIMPLER_OK, "rc %d: %s", rc, simpler_last_error()))
        return;
    const uint8_t *b = info->blob;
    CHECK(info->size == n);
    CHECK(info->num_args == 5);
    CHECK(info->num_tensor_args == 3);
    CHECK(info->num_scalar_args == 2);
    for (uint32_t i = 0; i < 5; i++) {
        CHECK(info->args[i].kind == s.kinds[i]);
        CHECK(info->args[i].dtype == s.dtypes[i]);
    }
    CHECK(info->orch == b + lay.orch_off);
    CHECK(info->orch_size == ELF_MIN + 40);
    CHECK(memcmp(info->orch, "\x7f" "ELF", 4) == 0);
    CHECK(strcmp(info->orch_entry, "orchestrate") == 0);
    CHECK(info->num_kernels == 2);
    for (uint32_t k = 0; k < 2; k++) {
        const callable_kernel *kn = &info->kernels[k];
        const kernel_spec *ks = &s.k[k];
        CHECK(kn->func_id == ks->func_id);
        CHECK(kn->core_type == ks->core_type);
        CHECK(kn->num_tensors == ks->num_tensors);
        CHECK(kn->num_scalars == ks->num_scalars);
        CHECK(kn->so == b + lay.so_off[k]);
        CHECK(kn->so_size == ks->so_size);
        for (uint32_t t = 0; t < ks->num_tensors; t++)
            CHECK(kn->tags[t] == ks->tags[t]);
        CHECK(strcmp(kn->entry, ks->entry) == 0);
        CHECK(strcmp(kn->name, ks->name) == 0);
    }
    CHECK(callable_find_kernel(info, 0) == 0);
    CHECK(callable_find_kernel(info, 65535) == 1);
    CHECK(callable_find_kernel(info, 1) == -1);
    free_parsed(info);
}

static void test_valid_minimal(void)
{
    static uint8_t buf[BUILD_CAP];
    layout lay;
    blob_spec s = minimal_spec();
    uint64_t n = build(&s, buf, &lay);
    callable_info *info = NULL;
    int rc = parse_copy(buf, n, &info);
    if (!CHECKF(rc == SIMPLER_OK, "rc %d: %s", rc, simpler_last_error()))
        return;
    CHECK(info->num_args == 0 && info->num_kernels == 0);
    CHECK(info->num_tensor_args == 0 && info->num_scalar_args == 0);
    CHECK(info->orch_size == ELF_MIN);
    CHECK(strcmp(info->orch_entry, "o") == 0);
    CHECK(callable_find_kernel(info, 0) == -1);
    free_parsed(info);
}

/* Names of the maximum length, every dtype, every tag, a kernel with no
 * tensors. */
static void test_valid_edges(void)
{
    static uint8_t buf[BUILD_CAP];
    static char longname[CALLABLE_MAX_NAME + 1];
    layout lay;
    memset(longname, 'a', CALLABLE_MAX_NAME);
    longname[0] = '_';
    longname[CALLABLE_MAX_NAME - 1] = '9';
    blob_spec s = minimal_spec();
    s.orch_entry = longname;
    static const uint32_t dtypes[] = {0, SIMPLER_DTYPE_INT8, SIMPLER_DTYPE_UINT8, SIMPLER_DTYPE_INT16,
                                      SIMPLER_DTYPE_FLOAT16, SIMPLER_DTYPE_BFLOAT16, SIMPLER_DTYPE_INT32,
                                      SIMPLER_DTYPE_UINT32, SIMPLER_DTYPE_FLOAT32, SIMPLER_DTYPE_INT64,
                                      SIMPLER_DTYPE_UINT64, SIMPLER_DTYPE_FLOAT64};
    s.num_args = 12;
    for (uint32_t i = 0; i < 12; i++) {
        s.kinds[i] = i < 4 ? (uint32_t[]){SIMPLER_INPUT, SIMPLER_OUTPUT_EXISTING, SIMPLER_INOUT,
                                          SIMPLER_NO_DEP}[i]
                           : CALLABLE_ARG_SCALAR;
        s.dtypes[i] = dtypes[i];
    }
    s.num_kernels = 2;
    s.k[0] = (kernel_spec){.func_id = 7, .core_type = SIMPLER_CORE_AIC, .num_tensors = 0,
                           .num_scalars = CALLABLE_MAX_KERNEL_SCALARS, .so_size = ELF_MIN, .entry = longname,
                           .name = longname};
    s.k[1] = (kernel_spec){.func_id = 8, .core_type = SIMPLER_CORE_AIV, .num_tensors = 5,
                           .tags = {1, 2, 3, 4, 5}, .so_size = ELF_MIN + 1, .entry = "k", .name = "Z"};
    uint64_t n = build(&s, buf, &lay);
    callable_info *info = NULL;
    int rc = parse_copy(buf, n, &info);
    if (!CHECKF(rc == SIMPLER_OK, "rc %d: %s", rc, simpler_last_error()))
        return;
    CHECK(info->num_tensor_args == 4 && info->num_scalar_args == 8);
    CHECK(strlen(info->orch_entry) == CALLABLE_MAX_NAME);
    CHECK(strcmp(info->kernels[0].entry, longname) == 0);
    CHECK(info->kernels[0].num_scalars == CALLABLE_MAX_KERNEL_SCALARS);
    CHECK(info->kernels[1].so_size == ELF_MIN + 1);
    free_parsed(info);
}

static void test_null_arguments(void)
{
    callable_info *info = (callable_info *)0x1;
    uint8_t byte = 0;
    CHECK(callable_parse(NULL, 100, &info) == SIMPLER_E_INVALID_ARGUMENT);
    CHECK(info == NULL);
    CHECK(callable_parse(&byte, 1, NULL) == SIMPLER_E_INVALID_ARGUMENT);
    callable_info_free(NULL);
}

/* ---- truncation ------------------------------------------------------ */

static void test_truncated(void)
{
    static uint8_t buf[BUILD_CAP], patched[BUILD_CAP];
    layout lay;
    blob_spec s = full_spec();
    uint64_t n = build(&s, buf, &lay);
    unsigned bad = 0, bad_patched = 0;
    for (uint64_t len = 0; len < n; len++) {
        /* As cut: the header (if present) still claims the full size. */
        if (parse_copy(buf, len, NULL) != SIMPLER_E_INVALID_CALLABLE)
            bad++;
        /* Cut and the size field patched to match, so the region checks
         * (not just the size check) must notice. */
        memcpy(patched, buf, n);
        if (len >= 24)
            callable_wr64(patched + 16, len);
        int rc = parse_copy(patched, len, NULL);
        if (rc != SIMPLER_E_INVALID_CALLABLE) {
            bad_patched++;
            fprintf(stderr, "    prefix of %llu bytes (size patched): rc %d\n", (unsigned long long)len, rc);
        }
    }
    CHECKF(bad == 0, "%u of %llu prefixes accepted", bad, (unsigned long long)n);
    CHECKF(bad_patched == 0, "%u of %llu patched prefixes accepted", bad_patched, (unsigned long long)n);
    EXPECT_BAD(buf, 0, "shorter than");
    EXPECT_BAD(buf, CALLABLE_HEADER_SIZE - 1, "shorter than");
    EXPECT_BAD(buf, n - 1, "truncated");
}

/* ---- header fields --------------------------------------------------- */

/* Each test case edits a fresh copy of the full blob. */
static uint8_t g_base[BUILD_CAP], g_buf[BUILD_CAP + 64];
static layout g_lay;
static uint64_t g_n;

static uint8_t *fresh(void)
{
    memcpy(g_buf, g_base, g_n);
    return g_buf;
}

static uint8_t *kentry(uint8_t *b, uint32_t k)
{
    return b + g_lay.kernels_off + (uint64_t)k * CALLABLE_KERNEL_ENTRY_SIZE;
}

static void test_header(void)
{
    uint8_t *b;
    EXPECT_OK(fresh(), g_n);

    b = fresh(); b[0] = 'X';
    EXPECT_BAD(b, g_n, "magic");
    b = fresh(); memcpy(b, "SMPLCHIQ", 8);
    EXPECT_BAD(b, g_n, "magic");
    b = fresh(); memset(b, 0, 8);
    EXPECT_BAD(b, g_n, "magic");

    b = fresh(); callable_wr32(b + 8, 2);
    EXPECT_BAD(b, g_n, "version 2");
    b = fresh(); callable_wr32(b + 8, 0);
    EXPECT_BAD(b, g_n, "version 0");
    b = fresh(); callable_wr32(b + 8, UINT32_MAX);
    EXPECT_BAD(b, g_n, "version");

    b = fresh(); callable_wr32(b + 12, 81);
    EXPECT_BAD(b, g_n, "header size");
    b = fresh(); callable_wr32(b + 12, 0);
    EXPECT_BAD(b, g_n, "header size");

    b = fresh(); callable_wr64(b + 16, g_n + 1);
    EXPECT_BAD(b, g_n, "truncated");
    b = fresh(); callable_wr64(b + 16, g_n - 1);
    EXPECT_BAD(b, g_n, "bytes");
    b = fresh(); callable_wr64(b + 16, UINT64_MAX);
    EXPECT_BAD(b, g_n, "truncated");
    b = fresh(); callable_wr64(b + 16, 0);
    EXPECT_BAD(b, g_n, "bytes");
    /* Trailing garbage: the blob is longer than the header says. */
    b = fresh(); b[g_n] = 0;
    EXPECT_BAD(b, g_n + 1, "bytes");

    b = fresh(); callable_wr32(b + 76, 1);
    EXPECT_BAD(b, g_n, "flags");
    b = fresh(); callable_wr32(b + 76, 0x80000000u);
    EXPECT_BAD(b, g_n, "flags");
}

static void test_absurd_counts(void)
{
    uint8_t *b;
    b = fresh(); callable_wr32(b + 28, UINT32_MAX);
    EXPECT_BAD(b, g_n, "kernels exceed");
    b = fresh(); callable_wr32(b + 28, CALLABLE_MAX_KERNELS + 1);
    EXPECT_BAD(b, g_n, "kernels exceed");
    /* Within the limit but the table would run past the blob. */
    b = fresh(); callable_wr32(b + 28, CALLABLE_MAX_KERNELS);
    EXPECT_BAD(b, g_n, "kernel table");
    b = fresh(); callable_wr32(b + 24, UINT32_MAX);
    EXPECT_BAD(b, g_n, "arguments exceed");
    b = fresh(); callable_wr32(b + 24, 0x20000001u); /* x 8 bytes wraps a u32 */
    EXPECT_BAD(b, g_n, "arguments exceed");
    b = fresh(); callable_wr32(b + 24, CALLABLE_MAX_ARGS + 1);
    EXPECT_BAD(b, g_n, "arguments exceed");
    b = fresh(); callable_wr32(b + 24, CALLABLE_MAX_ARGS);
    EXPECT_BAD(b, g_n, "argument table");

    b = fresh(); callable_wr32(kentry(b, 1) + 8, UINT32_MAX);
    EXPECT_BAD(b, g_n, "exceed the limits");
    b = fresh(); callable_wr32(kentry(b, 1) + 8, CALLABLE_MAX_KERNEL_TENSORS + 1);
    EXPECT_BAD(b, g_n, "exceed the limits");
    b = fresh(); callable_wr32(kentry(b, 0) + 12, UINT32_MAX);
    EXPECT_BAD(b, g_n, "exceed the limits");
    b = fresh(); callable_wr32(kentry(b, 0) + 12, CALLABLE_MAX_KERNEL_SCALARS + 1);
    EXPECT_BAD(b, g_n, "exceed the limits");
    /* A bigger but legal tensor count stretches the signature over the
     * entry name that follows it: a layout error, whatever those bytes
     * would decode to. */
    b = fresh(); callable_wr32(kentry(b, 1) + 8, 6);
    EXPECT_BAD(b, g_n, "overlaps");
}

static void test_out_of_range(void)
{
    uint8_t *b;
    /* Tables and binaries past the end or inside the header. */
    b = fresh(); callable_wr64(b + 32, g_n);
    EXPECT_BAD(b, g_n, "argument table");
    b = fresh(); callable_wr64(b + 32, 0);
    EXPECT_BAD(b, g_n, "argument table");
    b = fresh(); callable_wr64(b + 32, g_n - 32);
    EXPECT_BAD(b, g_n, "outside the blob");
    b = fresh(); callable_wr64(b + 40, g_n + 64);
    EXPECT_BAD(b, g_n, "kernel table");
    b = fresh(); callable_wr64(b + 40, 8);
    EXPECT_BAD(b, g_n, "kernel table");
    b = fresh(); callable_wr64(b + 48, 0);
    EXPECT_BAD(b, g_n, "orchestration binary");
    b = fresh(); callable_wr64(b + 48, (g_n + 7) & ~7ull);
    EXPECT_BAD(b, g_n, "orchestration binary");
    b = fresh(); callable_wr64(b + 56, g_n);
    EXPECT_BAD(b, g_n, "orchestration binary");
    b = fresh(); callable_wr64(b + 64, g_n);
    EXPECT_BAD(b, g_n, "orchestration entry name");
    b = fresh(); callable_wr64(b + 64, 10);
    EXPECT_BAD(b, g_n, "orchestration entry name");

    b = fresh(); callable_wr64(kentry(b, 1) + 16, g_n);
    EXPECT_BAD(b, g_n, "kernel 1 binary");
    b = fresh(); callable_wr64(kentry(b, 0) + 24, g_n);
    EXPECT_BAD(b, g_n, "kernel 0 binary");
    b = fresh(); callable_wr64(kentry(b, 0) + 32, g_n - 8);
    EXPECT_BAD(b, g_n, "kernel 0 signature");
    b = fresh(); callable_wr64(kentry(b, 1) + 40, g_n - 3);
    EXPECT_BAD(b, g_n, "kernel 1 entry name");
    b = fresh(); callable_wr64(kentry(b, 1) + 48, g_n);
    EXPECT_BAD(b, g_n, "kernel 1 name");
    b = fresh(); callable_wr64(kentry(b, 1) + 48, 0);
    EXPECT_BAD(b, g_n, "kernel 1 name");
}

/* offset + size must not wrap around to look in range. */
static void test_overflow(void)
{
    uint8_t *b;
    const uint64_t top = UINT64_MAX - 7; /* 8-byte aligned */
    b = fresh(); callable_wr64(b + 48, top); callable_wr64(b + 56, 16);
    EXPECT_BAD(b, g_n, "orchestration binary");
    b = fresh(); callable_wr64(b + 56, UINT64_MAX);
    EXPECT_BAD(b, g_n, "orchestration binary");
    b = fresh(); callable_wr64(b + 56, UINT64_MAX - g_lay.orch_off + 1); /* off + size == 0 mod 2^64 */
    EXPECT_BAD(b, g_n, "orchestration binary");
    b = fresh(); callable_wr64(b + 32, top);
    EXPECT_BAD(b, g_n, "argument table");
    b = fresh(); callable_wr64(b + 40, top);
    EXPECT_BAD(b, g_n, "kernel table");
    b = fresh(); callable_wr64(b + 64, UINT64_MAX);
    EXPECT_BAD(b, g_n, "orchestration entry name");
    b = fresh(); callable_wr64(b + 64, UINT64_MAX - 5);
    EXPECT_BAD(b, g_n, "orchestration entry name");

    b = fresh(); callable_wr64(kentry(b, 0) + 16, top); callable_wr64(kentry(b, 0) + 24, 72);
    EXPECT_BAD(b, g_n, "kernel 0 binary");
    b = fresh(); callable_wr64(kentry(b, 0) + 24, UINT64_MAX);
    EXPECT_BAD(b, g_n, "kernel 0 binary");
    b = fresh(); callable_wr64(kentry(b, 1) + 24, UINT64_MAX - g_lay.so_off[1] + 1);
    EXPECT_BAD(b, g_n, "kernel 1 binary");
    b = fresh(); callable_wr64(kentry(b, 0) + 32, UINT64_MAX - 3);
    EXPECT_BAD(b, g_n, "kernel 0 signature");
    b = fresh(); callable_wr64(kentry(b, 0) + 40, UINT64_MAX - 1);
    EXPECT_BAD(b, g_n, "kernel 0 entry name");
    b = fresh(); callable_wr64(kentry(b, 0) + 48, UINT64_MAX);
    EXPECT_BAD(b, g_n, "kernel 0 name");
}

static void test_overlap(void)
{
    uint8_t *b;
    /* Two kernels sharing one binary exactly: one object stored once. */
    b = fresh(); callable_wr64(kentry(b, 1) + 16, g_lay.so_off[0]); callable_wr64(kentry(b, 1) + 24, ELF_MIN + 8);
    callable_info *info = NULL;
    if (CHECKF(parse_copy(b, g_n, &info) == SIMPLER_OK, "exact share refused: %s", simpler_last_error())) {
        CHECK(info->kernels[1].so == info->kernels[0].so && info->kernels[1].so_size == ELF_MIN + 8);
        free_parsed(info);
    }
    /* Any other overlap of binaries: a prefix, a longer range, a shifted one,
     * the orchestration's. */
    b = fresh(); callable_wr64(kentry(b, 1) + 16, g_lay.so_off[0]); callable_wr64(kentry(b, 1) + 24, ELF_MIN);
    EXPECT_BAD(b, g_n, "kernel 1 binary overlaps kernel 0 binary");
    b = fresh(); callable_wr64(kentry(b, 0) + 16, g_lay.so_off[1]); callable_wr64(kentry(b, 0) + 24, ELF_MIN + 8);
    EXPECT_BAD(b, g_n, "overlaps");
    b = fresh(); callable_wr64(kentry(b, 1) + 16, g_lay.so_off[0] + 8); callable_wr64(kentry(b, 1) + 24, ELF_MIN);
    EXPECT_BAD(b, g_n, "overlaps");
    b = fresh(); callable_wr64(kentry(b, 1) + 16, g_lay.orch_off); callable_wr64(kentry(b, 1) + 24, ELF_MIN + 40);
    EXPECT_BAD(b, g_n, "overlaps");
    /* The orchestration entry name on top of a kernel's name (both read as
     * identifiers, so only the overlap check can refuse it). */
    b = fresh(); callable_wr64(b + 64, g_lay.name_off[0]); callable_wr32(b + 72, 6);
    EXPECT_BAD(b, g_n, "overlaps");
    /* Kernel name and entry name on the same bytes. */
    b = fresh(); callable_wr64(kentry(b, 0) + 48, g_lay.entry_off[0]); callable_wr32(kentry(b, 0) + 60, 6);
    EXPECT_BAD(b, g_n, "overlaps");
    /* Argument table on top of the kernel table (its bytes then read as
     * arguments: any complaint will do, but it must be refused). */
    b = fresh(); callable_wr64(b + 32, g_lay.kernels_off);
    EXPECT_BAD(b, g_n, "");
    /* The kernel table reaching into the orchestration binary. */
    b = fresh(); callable_wr64(b + 40, g_lay.kernels_off + 8);
    EXPECT_BAD(b, g_n, "");
    /* A signature inside a kernel binary (whose bytes 4.. are not tags, so
     * accept either complaint but it must be refused). */
    b = fresh(); callable_wr64(kentry(b, 1) + 32, g_lay.so_off[0] + 8);
    EXPECT_BAD(b, g_n, "");
    /* One byte of overlap at the end of a region: orchestration binary one
     * byte longer than its slot when the entry name follows immediately. */
    b = fresh(); callable_wr64(b + 56, g_lay.orch_entry_off - g_lay.orch_off + 1);
    EXPECT_BAD(b, g_n, "overlaps");
}

static void test_misaligned(void)
{
    uint8_t *b;
    b = fresh(); callable_wr64(b + 32, g_lay.args_off + 4);
    EXPECT_BAD(b, g_n, "aligned");
    b = fresh(); callable_wr64(b + 40, g_lay.kernels_off + 1);
    EXPECT_BAD(b, g_n, "aligned");
    b = fresh(); callable_wr64(b + 48, g_lay.orch_off + 4);
    EXPECT_BAD(b, g_n, "aligned");
    b = fresh(); callable_wr64(kentry(b, 0) + 16, g_lay.so_off[0] + 2);
    EXPECT_BAD(b, g_n, "aligned");
    b = fresh(); callable_wr64(kentry(b, 1) + 32, g_lay.sig_off[1] + 2);
    EXPECT_BAD(b, g_n, "aligned");
    b = fresh(); callable_wr64(kentry(b, 1) + 32, g_lay.sig_off[1] + 1);
    EXPECT_BAD(b, g_n, "aligned");
}

static void test_kernel_fields(void)
{
    uint8_t *b;
    b = fresh(); callable_wr32(kentry(b, 0) + 4, 2);
    EXPECT_BAD(b, g_n, "core_type 2");
    b = fresh(); callable_wr32(kentry(b, 1) + 4, UINT32_MAX);
    EXPECT_BAD(b, g_n, "core_type");
    b = fresh(); callable_wr32(kentry(b, 1) + 0, 0);
    EXPECT_BAD(b, g_n, "share func_id 0");
    b = fresh(); callable_wr32(kentry(b, 0) + 0, CALLABLE_MAX_FUNC_ID + 1);
    EXPECT_BAD(b, g_n, "func_id");
    b = fresh(); callable_wr32(kentry(b, 0) + 0, UINT32_MAX);
    EXPECT_BAD(b, g_n, "func_id");

    /* Unknown tensor directions in a kernel signature. */
    b = fresh(); callable_wr32(b + g_lay.sig_off[1] + 4, 0);
    EXPECT_BAD(b, g_n, "direction 0");
    b = fresh(); callable_wr32(b + g_lay.sig_off[1] + 12, 6);
    EXPECT_BAD(b, g_n, "direction 6");
    b = fresh(); callable_wr32(b + g_lay.sig_off[0], CALLABLE_ARG_SCALAR);
    EXPECT_BAD(b, g_n, "direction");

    /* Binaries that are not ELF shared objects, named by kernel and func. */
    b = fresh(); b[g_lay.so_off[1] + 1] = 'e';
    EXPECT_BAD(b, g_n, "kernel 1 (func 65535): not an ELF object");
    b = fresh(); callable_wr64(kentry(b, 0) + 24, 63);
    EXPECT_BAD(b, g_n, "kernel 0 (func 0): not an ELF object (63 bytes");
    b = fresh(); callable_wr64(kentry(b, 0) + 24, ELF_MIN - 1);
    EXPECT_BAD(b, g_n, "kernel 0 (func 0): ELF section header table [offset 328, 2 entries] is misaligned or extends "
                      "past the object's 455 bytes");
    b = fresh(); callable_wr64(kentry(b, 0) + 24, 0);
    EXPECT_BAD(b, g_n, "kernel 0 (func 0)");
    b = fresh(); b[g_lay.orch_off] = 0;
    EXPECT_BAD(b, g_n, "orchestration: not an ELF object");
    b = fresh(); callable_wr64(b + 56, 63);
    EXPECT_BAD(b, g_n, "orchestration: not an ELF object");
    b = fresh(); callable_wr64(b + 56, 0);
    EXPECT_BAD(b, g_n, "orchestration binary");
}

static void test_names(void)
{
    static const char *bad_names[] = {"1abc", "a-b", "a b", "a.b", "\xc3\xa9t", "ab$"};
    uint8_t *b;
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        const char *nm = bad_names[i];
        uint32_t len = (uint32_t)strlen(nm);
        /* Write over the start of the existing name and shorten it. */
        b = fresh(); memcpy(b + g_lay.orch_entry_off, nm, len); callable_wr32(b + 72, len);
        EXPECT_BAD(b, g_n, "orchestration entry name is not a C identifier");
        b = fresh(); memcpy(b + g_lay.entry_off[0], nm, len); callable_wr32(kentry(b, 0) + 56, len);
        EXPECT_BAD(b, g_n, "kernel 0 entry name is not a C identifier");
        b = fresh(); memcpy(b + g_lay.name_off[1], nm, len); callable_wr32(kentry(b, 1) + 60, len);
        EXPECT_BAD(b, g_n, "kernel 1 name is not a C identifier");
    }
    /* An embedded NUL would silently shorten the name. */
    b = fresh(); b[g_lay.orch_entry_off + 3] = 0;
    EXPECT_BAD(b, g_n, "not a C identifier");
    b = fresh(); b[g_lay.name_off[0] + 9] = 0;
    EXPECT_BAD(b, g_n, "not a C identifier");

    b = fresh(); callable_wr32(b + 72, 0);
    EXPECT_BAD(b, g_n, "orchestration entry name length 0");
    b = fresh(); callable_wr32(b + 72, CALLABLE_MAX_NAME + 1);
    EXPECT_BAD(b, g_n, "orchestration entry name length");
    b = fresh(); callable_wr32(b + 72, UINT32_MAX);
    EXPECT_BAD(b, g_n, "orchestration entry name length");
    b = fresh(); callable_wr32(kentry(b, 0) + 56, 0);
    EXPECT_BAD(b, g_n, "entry name length 0");
    b = fresh(); callable_wr32(kentry(b, 0) + 56, CALLABLE_MAX_NAME + 1);
    EXPECT_BAD(b, g_n, "out of range");
    b = fresh(); callable_wr32(kentry(b, 1) + 60, CALLABLE_MAX_NAME + 1);
    EXPECT_BAD(b, g_n, "out of range");
    b = fresh(); callable_wr32(kentry(b, 1) + 60, UINT32_MAX);
    EXPECT_BAD(b, g_n, "out of range");
}

static void test_arg_table(void)
{
    static uint8_t buf[BUILD_CAP];
    layout lay;
    blob_spec s = full_spec();
    uint8_t *b;

    /* Tensors after scalars. */
    s.kinds[2] = CALLABLE_ARG_SCALAR;
    s.kinds[3] = SIMPLER_INPUT;
    uint64_t n = build(&s, buf, &lay);
    EXPECT_BAD(buf, n, "argument 3: tensors must come before scalars");
    s = full_spec();
    s.kinds[0] = CALLABLE_ARG_SCALAR;
    n = build(&s, buf, &lay);
    EXPECT_BAD(buf, n, "tensors must come before scalars");
    s = full_spec();
    s.kinds[4] = SIMPLER_NO_DEP;
    n = build(&s, buf, &lay);
    EXPECT_BAD(buf, n, "argument 4: tensors must come before scalars");

    /* Unknown kinds; OUTPUT (a runtime-allocated tensor) is not a run
     * argument. */
    static const uint32_t bad_kinds[] = {0, SIMPLER_OUTPUT, 6, 15, 17, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_kinds / sizeof *bad_kinds; i++) {
        b = fresh(); callable_wr32(b + g_lay.args_off + 8, bad_kinds[i]);
        EXPECT_BAD(b, g_n, "argument 1: unknown kind");
    }
    /* Unknown dtypes. */
    static const uint32_t bad_dtypes[] = {1, 0x104, 0xC08, 0x999, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad_dtypes / sizeof *bad_dtypes; i++) {
        b = fresh(); callable_wr32(b + g_lay.args_off + 8 * 3 + 4, bad_dtypes[i]);
        EXPECT_BAD(b, g_n, "argument 3: unknown dtype");
    }
}

/* ---- random damage --------------------------------------------------- */

static int is_ident(const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Re-derive every region of an accepted blob from its raw fields and check
 * the format's promises independently of the parser: inside the blob, past
 * the header, aligned, pairwise disjoint. */
static int regions_are_sane(const uint8_t *b, uint64_t n)
{
    uint64_t off[4 + 4 * 8], len[4 + 4 * 8], align[4 + 4 * 8];
    uint32_t count = 0, nk = callable_rd32(b + 28);
    if (nk > 8)
        return 0; /* the fuzz base has 2 kernels; more cannot fit its size */
#define REGION(o, l, a) (off[count] = (o), len[count] = (l), align[count] = (a), count++)
    REGION(callable_rd64(b + 32), 8ull * callable_rd32(b + 24), 8);
    REGION(callable_rd64(b + 40), 64ull * nk, 8);
    REGION(callable_rd64(b + 48), callable_rd64(b + 56), 8);
    REGION(callable_rd64(b + 64), callable_rd32(b + 72), 1);
    for (uint32_t k = 0; k < nk; k++) {
        const uint8_t *e = b + callable_rd64(b + 40) + 64ull * k;
        REGION(callable_rd64(e + 16), callable_rd64(e + 24), 8);
        REGION(callable_rd64(e + 32), 4ull * callable_rd32(e + 8), 4);
        REGION(callable_rd64(e + 40), callable_rd32(e + 56), 1);
        REGION(callable_rd64(e + 48), callable_rd32(e + 60), 1);
    }
#undef REGION
    for (uint32_t i = 0; i < count; i++) {
        if (!len[i])
            continue;
        if (off[i] < CALLABLE_HEADER_SIZE || off[i] > n || len[i] > n - off[i] || off[i] % align[i])
            return 0;
        for (uint32_t j = 0; j < i; j++) {
            int both_binaries = i >= 4 && j >= 4 && (i - 4) % 4 == 0 && (j - 4) % 4 == 0;
            if (both_binaries && off[i] == off[j] && len[i] == len[j])
                continue;   /* one binary shared by two kernels */
            if (len[j] && off[i] < off[j] + len[j] && off[j] < off[i] + len[i])
                return 0;
        }
    }
    return 1;
}

/* What an accepted blob promises its users. */
static int accepted_is_sane(const callable_info *info, const uint8_t *blob, uint64_t n)
{
    int ok = info->blob == blob && info->size == n;
    ok = ok && info->num_args <= CALLABLE_MAX_ARGS && info->num_kernels <= CALLABLE_MAX_KERNELS;
    ok = ok && info->num_tensor_args + info->num_scalar_args == info->num_args;
    ok = ok && info->orch >= blob && info->orch_size >= 64 && info->orch_size <= n &&
         (uint64_t)(info->orch - blob) <= n - info->orch_size && memcmp(info->orch, "\x7f" "ELF", 4) == 0;
    ok = ok && info->orch_entry[0] && is_ident(info->orch_entry);
    for (uint32_t i = 0; ok && i < info->num_args; i++)
        ok = (info->args[i].kind == CALLABLE_ARG_SCALAR) == (i >= info->num_tensor_args);
    for (uint32_t k = 0; ok && k < info->num_kernels; k++) {
        const callable_kernel *kn = &info->kernels[k];
        ok = kn->so >= blob && kn->so_size >= 64 && kn->so_size <= n && (uint64_t)(kn->so - blob) <= n - kn->so_size;
        ok = ok && kn->core_type <= SIMPLER_CORE_AIV && kn->func_id <= CALLABLE_MAX_FUNC_ID;
        ok = ok && kn->num_tensors <= CALLABLE_MAX_KERNEL_TENSORS && kn->num_scalars <= CALLABLE_MAX_KERNEL_SCALARS;
        ok = ok && kn->entry[0] && is_ident(kn->entry) && is_ident(kn->name);
        for (uint32_t t = 0; ok && t < kn->num_tensors; t++)
            ok = kn->tags[t] >= SIMPLER_INPUT && kn->tags[t] <= SIMPLER_NO_DEP;
        for (uint32_t j = 0; ok && j < k; j++)
            ok = info->kernels[j].func_id != kn->func_id;
    }
    return ok;
}

static void test_fuzz(void)
{
    static uint8_t buf[BUILD_CAP];
    unsigned long long rng = 0x5eed;
    unsigned accepted = 0, refused = 0, wrong = 0, insane = 0, silent = 0;
    const int rounds = 20000;
    for (int round = 0; round < rounds; round++) {
        memcpy(buf, g_base, g_n);
        uint64_t n = g_n;
        unsigned flips = 1 + (unsigned)(check_rand(&rng) % 4);
        for (unsigned f = 0; f < flips; f++) {
            uint64_t r = check_rand(&rng);
            /* Aim most damage at the header and the tables, where the
             * offsets and counts live. */
            uint64_t span = (r & 3) ? g_lay.orch_off : n;
            uint64_t at = (r >> 8) % span;
            switch ((r >> 4) & 3) {
            case 0: buf[at] ^= (uint8_t)(1u << ((r >> 40) % 8)); break;
            case 1: buf[at] = (uint8_t)(r >> 40); break;
            case 2: buf[at] = (r >> 40) & 1 ? 0xFF : 0x00; break;
            default: /* a whole 32-bit word set to an edge value */
                at &= ~(uint64_t)3;
                if (at + 4 <= n)
                    callable_wr32(buf + at, (uint32_t[]){0, 1, 0x7FFFFFFF, 0x80000000u, UINT32_MAX}[(r >> 40) % 5]);
                break;
            }
        }
        uint64_t r = check_rand(&rng);
        if (r % 8 == 0) /* sometimes also cut or extend, keeping the size field honest */
            n = (r >> 8) % (g_n + 16);
        if (n >= 24 && r % 16 < 8)
            callable_wr64(buf + 16, n);
        uint8_t *copy = exact_copy(buf, n);
        callable_info *info = NULL;
        simpler_clear_error();
        int rc = callable_parse(copy, n, &info);
        if (rc == SIMPLER_OK) {
            accepted++;
            if (!accepted_is_sane(info, copy, n) || !regions_are_sane(copy, n))
                insane++;
            callable_info_free(info);
        } else if (rc == SIMPLER_E_INVALID_CALLABLE) {
            refused++;
            if (info != NULL || strncmp(simpler_last_error(), "invalid callable: ", 18) != 0)
                silent++;
        } else {
            wrong++;
            fprintf(stderr, "    round %d: rc %d (%s)\n", round, rc, simpler_last_error());
        }
        free(copy);
    }
    CHECKF(wrong == 0, "%u mutations gave a code other than OK / INVALID_CALLABLE", wrong);
    CHECKF(insane == 0, "%u accepted mutations broke the parser's promises", insane);
    CHECKF(silent == 0, "%u refusals without an 'invalid callable' message or with *out set", silent);
    CHECKF(accepted + refused == (unsigned)rounds, "%u + %u != %d", accepted, refused, rounds);
    /* The loop is only meaningful if it produces both outcomes. */
    CHECKF(accepted > 100 && refused > 10000, "accepted %u, refused %u", accepted, refused);
    printf("fuzz: %u accepted, %u refused\n", accepted, refused);
}

/* ---- the ELF checks (common/elf_check.c) ------------------------------ */

/* One field of the minimal object set to a value, and what the check must
 * say about it. */
typedef struct elf_case {
    uint32_t at, width;
    uint64_t value;
    const char *needle;
} elf_case;

#define PH0 ELF_PH
#define PH1 (ELF_PH + 56)
#define SH1 (ELF_SH + 64)
#define DYN(i) (ELF_DYN + 16 * (i))

static const elf_case elf_cases[] = {
    /* ELF header */
    {0, 1, 0x7e, "not an ELF object"},
    {4, 1, 1, "ELF class 1 is not 64-bit"},
    {5, 1, 2, "data encoding 2"},
    {6, 1, 0, "ELF version 0/1"},
    {20, 4, 2, "ELF version 1/2"},
    {16, 2, 2, "ELF type 2 is not a shared object"},
    {18, 2, 40, "ELF machine 40 is not this host's"},
    {52, 2, 52, "ELF header size 52"},
    /* program header table */
    {54, 2, 32, "ELF program header size 32"},
    {56, 2, 0, "program header count 0"},
    {56, 2, 0xffff, "program header count 65535"},
    {56, 2, 8, "program header table [offset 64, 8 entries] is misaligned or extends past the object's 456 bytes"},
    {32, 8, 68, "program header table [offset 68"},
    {32, 8, UINT64_MAX - 7, "program header table"},
    /* section header table */
    {58, 2, 40, "ELF section header size 40"},
    {60, 2, 0, "extended section numbering"},
    {62, 2, 0xffff, "extended section numbering"},
    {60, 2, 3, "section header table [offset 328, 3 entries]"},
    {40, 8, 4, "section header table [offset 4"},
    {40, 8, UINT64_MAX - 63, "section header table"},
    {62, 2, 2, "section name table index 2 is not below the 2 sections"},
    {62, 2, 0, NULL},                                  /* no section names: fine */
    {SH1 + 4, 4, 1, "section 1 (section names) is not a string table"},
    {SH1 + 24, 8, 450, "ELF section header 1: section [offset 450, 11 bytes] extends past the object's 456 bytes"},
    {SH1 + 32, 8, UINT64_MAX, "ELF section header 1: section"},
    {SH1 + 48, 8, 3, "ELF section header 1: alignment 3 is not a power of two"},
    {SH1, 4, 11, "ELF section header 1: name offset 11"},
    /* loadable segment */
    {PH0 + 32, 8, ELF_MIN + 1, "ELF program header 0: segment extends past the object's 456 bytes"},
    {PH0 + 8, 8, UINT64_MAX, "ELF program header 0: segment extends past"},
    {PH0 + 40, 8, 100, "ELF program header 0: file size 456 exceeds memory size 100"},
    {PH0 + 48, 8, 3, "ELF program header 0: alignment 3"},
    {PH0 + 16, 8, 8, "ELF program header 0: alignment 4096 is not a power of two dividing address minus offset"},
    {PH0 + 4, 4, 7, "executable segment of 456 bytes has 456"},  /* fine: file and memory sizes agree */
    {PH0, 4, 0, "no loadable segment"},
    {PH0 + 4, 4, 4, "dynamic table is not in a writable segment"},
    {PH0 + 4, 4, 2, "ELF program header 0: loaded segment is not readable"},
    /* dynamic segment */
    {PH1, 4, 0, "has 0 dynamic segments, expected 1"},
    {PH1, 4, 1, "ELF program header 1: loaded segment at 0xb0 overlaps or precedes the one before it"},
    {PH1 + 8, 8, ELF_MIN, "ELF program header 1: segment extends past"},
    {PH1 + 16, 8, 1 << 20, "ELF program header 1: segment [0x100000, 96 bytes] lies outside every loaded segment"},
    {PH1 + 16, 8, ELF_DYN + 4, "dynamic table is misaligned"},
    /* dynamic table */
    {DYN(5), 8, 11, "no DT_NULL terminator within its 96 bytes"},
    {DYN(0), 8, 0x50, "ELF dynamic entry 0: unknown tag 0x50"},
    {DYN(0), 8, UINT64_MAX, "unknown tag"},
    {DYN(0), 8, 0x100000004ull, "unknown tag"},
    {DYN(1), 8, 0, "has no string table"},
    {DYN(3) + 8, 8, 0, "has no string table"},
    {DYN(1) + 8, 8, ELF_MIN, "string table [0x1c8, 1 bytes] is not in a loaded segment's file bytes"},
    {DYN(1) + 8, 8, ELF_SHSTR + 1, "string table does not end with a NUL"},
    {DYN(2), 8, 0x6ffffef5, "has no symbol table"},   /* now a GNU hash table entry */
    {DYN(4) + 8, 8, 16, "symbol entry size 16"},
    {DYN(2) + 8, 8, ELF_MIN - 8, "symbol table: symbol 0 is past the symbol table's loaded bytes"},
    {DYN(0), 8, 11, "has no hash table"},            /* now a second DT_SYMENT */
    {ELF_HASH + 4, 4, 1u << 20, "hash table (1 buckets, 1048576 chains) extends past"},
    {ELF_HASH + 8, 4, 1, "hash table entry 0 is past its 1 chains"},
    {DYN(0), 8, 7, "has DT_RELA without its size"},
    {DYN(0), 8, 17, "DT_REL relocations are not used"},
    {DYN(4), 8, 12, "init function at 0x18 is not in an executable segment"},
    {DYN(4), 8, 1, "string offset 24 is past the 1-byte string table"},  /* a DT_NEEDED */
    {DYN(4) + 8, 8, 1, "symbol entry size 1"},
    {DYN(0), 8, 25, "has DT_INIT_ARRAY without its size"},
};

static void test_elf(void)
{
    uint8_t base[ELF_MIN], obj[ELF_MIN];
    char why[ELF_CHECK_WHY_MAX];
    fake_elf(base, ELF_MIN, 0);
    CHECKF(elf_check(base, ELF_MIN, why, sizeof why) == 0, "the minimal object: %s", why);
    for (unsigned i = 0; i < sizeof elf_cases / sizeof *elf_cases; i++) {
        const elf_case *c = &elf_cases[i];
        memcpy(obj, base, ELF_MIN);
        for (uint32_t b = 0; b < c->width; b++)
            obj[c->at + b] = (uint8_t)(c->value >> (8 * b));
        uint8_t *copy = exact_copy(obj, ELF_MIN);
        why[0] = '\0';
        int rc = elf_check(copy, ELF_MIN, why, sizeof why);
        free(copy);
        /* "executable segment" case: an executable segment of equal sizes is accepted */
        int want_ok = c->needle == NULL || strstr(c->needle, "has 456") != NULL;
        if (want_ok)
            CHECKF(rc == 0, "case %u (offset %u = 0x%llx): refused: %s", i, c->at, (unsigned long long)c->value, why);
        else
            CHECKF(rc == -1 && strstr(why, c->needle), "case %u (offset %u = 0x%llx): wanted \"%s\", got rc %d \"%s\"",
                   i, c->at, (unsigned long long)c->value, c->needle, rc, why);
    }
    /* An executable segment whose code is partly not in the file. */
    memcpy(obj, base, ELF_MIN);
    callable_wr32(obj + PH0 + 4, 7);
    callable_wr64(obj + PH0 + 40, 4096);
    CHECK(elf_check(obj, ELF_MIN, why, sizeof why) == -1 && strstr(why, "executable segment of 4096 bytes has 456"));
    /* A segment that wraps around the address space. */
    memcpy(obj, base, ELF_MIN);
    callable_wr64(obj + PH0 + 16, UINT64_MAX - 4095);
    callable_wr64(obj + PH0 + 40, 8192);
    CHECK(elf_check(obj, ELF_MIN, why, sizeof why) == -1 && strstr(why, "wraps around the address space"));
    /* A NOBITS section need not lie in the file. */
    memcpy(obj, base, ELF_MIN);
    callable_wr32(obj + SH1 + 4, 8);    /* SHT_NOBITS */
    callable_wr64(obj + SH1 + 24, 1ull << 40);
    wr16(obj + 62, 0);
    CHECKF(elf_check(obj, ELF_MIN, why, sizeof why) == 0, "NOBITS: %s", why);
    /* Every prefix of the object is refused. */
    unsigned accepted = 0;
    for (uint32_t len = 0; len < ELF_MIN; len++) {
        uint8_t *copy = exact_copy(base, len);
        accepted += elf_check(copy, len, why, sizeof why) == 0;
        free(copy);
    }
    CHECKF(accepted == 0, "%u truncated objects accepted", accepted);
    CHECK(elf_check(NULL, 10, why, sizeof why) == -1);
    /* Through the parser, the message names the kernel and its func id. */
    uint8_t *b = fresh();
    callable_wr64(b + g_lay.so_off[1] + PH0 + 32, 1 << 20);
    EXPECT_BAD(b, g_n, "kernel 1 (func 65535): ELF program header 0: segment extends past the object's 520 bytes");
    b = fresh();
    wr16(b + g_lay.orch_off + 18, 3);
    EXPECT_BAD(b, g_n, "orchestration: ELF machine 3 is not this host's");
}

int main(void)
{
    blob_spec s = full_spec();
    g_n = build(&s, g_base, &g_lay);

    test_valid_full();
    test_valid_minimal();
    test_valid_edges();
    test_null_arguments();
    test_truncated();
    test_header();
    test_absurd_counts();
    test_out_of_range();
    test_overflow();
    test_overlap();
    test_misaligned();
    test_kernel_fields();
    test_names();
    test_arg_table();
    test_elf();
    test_fuzz();
    test_builder_round_trip();
    test_builder_random();
    return check_report();
}
