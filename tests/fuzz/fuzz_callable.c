/* libFuzzer target: the ChipCallable parser on arbitrary bytes. A blob it
 * accepts must describe only bytes inside itself, and so must every object
 * in it: each segment and section the ELF headers name lies inside the
 * object's bytes (the loader would map or read them).
 *
 * Plain mutations rarely produce an object the ELF checks accept, so a
 * custom mutator (libFuzzer's hook, which tests/fuzz/driver.c honours too)
 * aims half the mutations at one field of one object inside the blob: its
 * size in the kernel table, an ELF header field, a program or section
 * header field, or a dynamic table entry. */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "callable/callable.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static uint64_t rd(const uint8_t *p, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr(uint8_t *p, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- what an accepted object promises -------------------------------- */

static volatile uint8_t g_sink;

static void touch(const uint8_t *p, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        g_sink ^= p[i];
}

/* Every byte the headers name is read: ASan reports any outside the
 * blob's exact-size copy, and the asserts catch ranges outside the object
 * but inside the blob. */
static void check_object(const uint8_t *obj, uint64_t size)
{
    if (size < 64)
        abort();
    uint64_t phoff = rd(obj + 32, 8), shoff = rd(obj + 40, 8);
    uint64_t phnum = rd(obj + 56, 2), shnum = rd(obj + 60, 2);
    if (phoff > size || phnum * 56 > size - phoff || (shoff && (shoff > size || shnum * 64 > size - shoff)))
        abort();
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *ph = obj + phoff + 56 * i;
        uint64_t off = rd(ph + 8, 8), filesz = rd(ph + 32, 8);
        if (off > size || filesz > size - off)
            abort();
        touch(obj + off, filesz);
    }
    for (uint64_t i = 0; shoff && i < shnum; i++) {
        const uint8_t *sh = obj + shoff + 64 * i;
        uint32_t type = (uint32_t)rd(sh + 4, 4);
        uint64_t off = rd(sh + 24, 8), len = rd(sh + 32, 8);
        if (type == SHT_NOBITS || type == SHT_NULL)
            continue;
        if (off > size || len > size - off)
            abort();
        touch(obj + off, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so reads past the end trip ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    for (size_t i = 0; i < size; i++)
        copy[i] = data[i];
    callable_info *info;
    if (callable_parse(copy, size, &info) == 0) {
        check_object(info->orch, info->orch_size);
        for (uint32_t k = 0; k < info->num_kernels; k++)
            check_object(info->kernels[k].so, info->kernels[k].so_size);
        callable_info_free(info);
    }
    free(copy);
    return 0;
}

/* ---- aiming mutations at objects inside the blob ---------------------- */

static uint64_t g_rng;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* A new value for a field of width bytes that held old, in an object of
 * size bytes: edges, sizes near the object's, small steps, random. */
static uint64_t new_value(uint64_t old, uint64_t size, unsigned width)
{
    uint64_t mask = width == 8 ? UINT64_MAX : (1ull << (8 * width)) - 1;
    switch (rnd() % 8) {
    case 0: return 0;
    case 1: return mask;
    case 2: return size + rnd() % 64 - 32;
    case 3: return old + rnd() % 64 - 32;
    case 4: return (1ull << (rnd() % (8 * width))) & mask;
    case 5: return old ^ (1ull << (rnd() % (8 * width)));
    case 6: return rnd() % (2 * size + 1);
    default: return rnd() & mask;
    }
}

/* Where one object lies in the blob, and where its size is kept. */
typedef struct object_ref {
    uint64_t off, size, size_field;
} object_ref;

static int pick_object(const uint8_t *b, size_t n, object_ref *o)
{
    if (n < CALLABLE_HEADER_SIZE)
        return 0;
    uint64_t nk = rd(b + 28, 4), koff = rd(b + 40, 8);
    uint64_t k = nk ? rnd() % (nk + 1) : nk;
    if (k == nk) {     /* the orchestration */
        o->off = rd(b + 48, 8);
        o->size_field = 56;
    } else {
        if (koff > n || (k + 1) * CALLABLE_KERNEL_ENTRY_SIZE > n - koff)
            return 0;
        o->off = rd(b + koff + k * CALLABLE_KERNEL_ENTRY_SIZE + 16, 8);
        o->size_field = koff + k * CALLABLE_KERNEL_ENTRY_SIZE + 24;
    }
    o->size = rd(b + o->size_field, 8);
    return o->off <= n && o->size <= n - o->off && o->size >= 64;
}

/* A field of the object (offset from its start, width), or 0. */
static int pick_field(const uint8_t *obj, uint64_t size, uint64_t *at, unsigned *width)
{
    static const uint8_t ehdr[][2] = {{4, 1}, {5, 1}, {6, 1}, {16, 2}, {18, 2}, {20, 4}, {32, 8}, {40, 8},
                                      {52, 2}, {54, 2}, {56, 2}, {58, 2}, {60, 2}, {62, 2}};
    static const uint8_t phdr[][2] = {{0, 4}, {4, 4}, {8, 8}, {16, 8}, {32, 8}, {40, 8}, {48, 8}};
    static const uint8_t shdr[][2] = {{0, 4}, {4, 4}, {8, 8}, {16, 8}, {24, 8}, {32, 8}, {48, 8}};
    uint64_t phoff = rd(obj + 32, 8), shoff = rd(obj + 40, 8);
    uint64_t phnum = rd(obj + 56, 2), shnum = rd(obj + 60, 2);
    int phok = phnum && phoff <= size && phnum * 56 <= size - phoff;
    int shok = shnum && shoff <= size && shnum * 64 <= size - shoff;
    const uint8_t(*f)[2];
    switch (rnd() % 4) {
    case 0:
        f = &ehdr[rnd() % (sizeof ehdr / sizeof *ehdr)];
        *at = (*f)[0];
        break;
    case 1:
        if (!phok)
            return 0;
        f = &phdr[rnd() % (sizeof phdr / sizeof *phdr)];
        *at = phoff + 56 * (rnd() % phnum) + (*f)[0];
        break;
    case 2:
        if (!shok)
            return 0;
        f = &shdr[rnd() % (sizeof shdr / sizeof *shdr)];
        *at = shoff + 64 * (rnd() % shnum) + (*f)[0];
        break;
    default: {  /* a dynamic entry's tag or value, found through PT_DYNAMIC */
        if (!phok)
            return 0;
        for (uint64_t i = 0; i < phnum; i++) {
            const uint8_t *ph = obj + phoff + 56 * i;
            uint64_t off = rd(ph + 8, 8), len = rd(ph + 32, 8);
            if (rd(ph, 4) != PT_DYNAMIC || len < 16 || off > size || len > size - off)
                continue;
            *at = off + 16 * (rnd() % (len / 16)) + 8 * (rnd() % 2);
            *width = 8;
            return 1;
        }
        return 0;
    }
    }
    *width = (*f)[1];
    return *at + *width <= size;
}

static int mutate_object(uint8_t *b, size_t n)
{
    object_ref o;
    if (!pick_object(b, n, &o))
        return 0;
    if (rnd() % 8 == 0) {   /* a truncated object: its size cut in the kernel table */
        wr(b + o.size_field, 8, rnd() % o.size);
        return 1;
    }
    uint64_t at;
    unsigned width;
    for (int tries = 0; tries < 8; tries++)
        if (pick_field(b + o.off, o.size, &at, &width)) {
            uint8_t *p = b + o.off + at;
            wr(p, width, new_value(rd(p, width), o.size, width));
            return 1;
        }
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    g_rng = seed | 1;
    if (rnd() % 2 && mutate_object(data, size)) {
        if (rnd() % 4 == 0)     /* sometimes a second field too */
            mutate_object(data, size);
        return size;
    }
    return LLVMFuzzerMutate(data, size, max_size);
}
