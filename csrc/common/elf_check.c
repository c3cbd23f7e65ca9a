#include "common/elf_check.h"

#include <elf.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if UINTPTR_MAX != UINT64_MAX
#error "simpler loads 64-bit ELF objects only"
#endif
#if defined(__x86_64__)
#define ELF_HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define ELF_HOST_MACHINE EM_AARCH64
#elif defined(__riscv)
#define ELF_HOST_MACHINE EM_RISCV
#else
#error "the ELF machine of this host is not known: add it here"
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ELF_HOST_DATA ELFDATA2LSB
#else
#define ELF_HOST_DATA ELFDATA2MSB
#endif

/* The object under check. Headers are copied out with memcpy: the bytes
 * may sit at any alignment. */
typedef struct elf_obj {
    const uint8_t *p;
    uint64_t size;
    Elf64_Ehdr eh;
    char *why;
    size_t why_size;
    /* from the dynamic table, once it is known to be sound */
    uint64_t strtab_off, strsz;      /* file offset of the string table */
    uint64_t symtab, syment;         /* address */
    uint64_t max_sym;                /* largest symbol index anything names */
    int textrel;                     /* DT_TEXTREL: relocations may write code */
} elf_obj;

static int elf_fail(elf_obj *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int elf_fail(elf_obj *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->why, o->why_size, fmt, ap);
    va_end(ap);
    return -1;
}

/* [off, off + len) inside [0, size), without overflow. */
static int elf_inside(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

static int elf_pow2(uint64_t v) { return (v & (v - 1)) == 0; }

static Elf64_Phdr elf_phdr(const elf_obj *o, uint32_t i)
{
    Elf64_Phdr h;
    memcpy(&h, o->p + o->eh.e_phoff + (uint64_t)i * sizeof h, sizeof h);
    return h;
}

static Elf64_Shdr elf_shdr(const elf_obj *o, uint32_t i)
{
    Elf64_Shdr h;
    memcpy(&h, o->p + o->eh.e_shoff + (uint64_t)i * sizeof h, sizeof h);
    return h;
}

static int elf_check_header(elf_obj *o)
{
    const Elf64_Ehdr *e = &o->eh;
    if (o->size < sizeof *e || memcmp(o->p, ELFMAG, SELFMAG) != 0)
        return elf_fail(o, "not an ELF object (%" PRIu64 " bytes, no ELF header)", o->size);
    memcpy(&o->eh, o->p, sizeof o->eh);
    if (e->e_ident[EI_CLASS] != ELFCLASS64)
        return elf_fail(o, "ELF class %u is not 64-bit", e->e_ident[EI_CLASS]);
    if (e->e_ident[EI_DATA] != ELF_HOST_DATA)
        return elf_fail(o, "ELF data encoding %u is not this host's byte order", e->e_ident[EI_DATA]);
    if (e->e_ident[EI_VERSION] != EV_CURRENT || e->e_version != EV_CURRENT)
        return elf_fail(o, "ELF version %u/%u is not %d", e->e_ident[EI_VERSION], e->e_version, EV_CURRENT);
    if (e->e_type != ET_DYN)
        return elf_fail(o, "ELF type %u is not a shared object (ET_DYN); link with -shared", e->e_type);
    if (e->e_machine != ELF_HOST_MACHINE)
        return elf_fail(o, "ELF machine %u is not this host's (%d)", e->e_machine, ELF_HOST_MACHINE);
    if (e->e_ehsize != sizeof *e)
        return elf_fail(o, "ELF header size %u, expected %zu", e->e_ehsize, sizeof *e);
    return 0;
}

/* The program and section header tables lie inside the object. */
static int elf_check_tables(elf_obj *o)
{
    const Elf64_Ehdr *e = &o->eh;
    if (e->e_phentsize != sizeof(Elf64_Phdr))
        return elf_fail(o, "ELF program header size %u, expected %zu", e->e_phentsize, sizeof(Elf64_Phdr));
    if (e->e_phnum == 0 || e->e_phnum == PN_XNUM)
        return elf_fail(o, "ELF program header count %u is not usable", e->e_phnum);
    if (e->e_phoff % 8 || !elf_inside(e->e_phoff, (uint64_t)e->e_phnum * sizeof(Elf64_Phdr), o->size))
        return elf_fail(o, "ELF program header table [offset %" PRIu64 ", %u entries] is misaligned or extends "
                        "past the object's %" PRIu64 " bytes", (uint64_t)e->e_phoff, e->e_phnum, o->size);
    if (e->e_shoff == 0) {
        if (e->e_shnum != 0 || e->e_shstrndx != SHN_UNDEF)
            return elf_fail(o, "ELF header names %u sections but no section header table", e->e_shnum);
        return 0;
    }
    if (e->e_shentsize != sizeof(Elf64_Shdr))
        return elf_fail(o, "ELF section header size %u, expected %zu", e->e_shentsize, sizeof(Elf64_Shdr));
    if (e->e_shnum == 0 || e->e_shstrndx == SHN_XINDEX)
        return elf_fail(o, "ELF extended section numbering is not supported");
    if (e->e_shoff % 8 || !elf_inside(e->e_shoff, (uint64_t)e->e_shnum * sizeof(Elf64_Shdr), o->size))
        return elf_fail(o, "ELF section header table [offset %" PRIu64 ", %u entries] is misaligned or extends "
                        "past the object's %" PRIu64 " bytes", (uint64_t)e->e_shoff, e->e_shnum, o->size);
    if (e->e_shstrndx >= e->e_shnum)
        return elf_fail(o, "ELF section name table index %u is not below the %u sections", e->e_shstrndx,
                        e->e_shnum);
    return 0;
}

static int elf_check_sections(elf_obj *o)
{
    uint64_t names_size = 0;
    if (o->eh.e_shnum && o->eh.e_shstrndx != SHN_UNDEF) {
        Elf64_Shdr names = elf_shdr(o, o->eh.e_shstrndx);
        if (names.sh_type != SHT_STRTAB)
            return elf_fail(o, "ELF section %u (section names) is not a string table", o->eh.e_shstrndx);
        names_size = names.sh_size;
    }
    for (uint32_t i = 0; i < o->eh.e_shnum; i++) {
        Elf64_Shdr s = elf_shdr(o, i);
        if (s.sh_type != SHT_NOBITS && s.sh_type != SHT_NULL && !elf_inside(s.sh_offset, s.sh_size, o->size))
            return elf_fail(o, "ELF section header %u: section [offset %" PRIu64 ", %" PRIu64 " bytes] extends "
                            "past the object's %" PRIu64 " bytes", i, (uint64_t)s.sh_offset,
                            (uint64_t)s.sh_size, o->size);
        if (!elf_pow2(s.sh_addralign))
            return elf_fail(o, "ELF section header %u: alignment %" PRIu64 " is not a power of two", i,
                            (uint64_t)s.sh_addralign);
        if (s.sh_type != SHT_NULL && names_size && s.sh_name >= names_size)
            return elf_fail(o, "ELF section header %u: name offset %u is past the section name table", i,
                            s.sh_name);
    }
    return 0;
}

/* The PT_LOAD holding [addr, addr + len) in memory, or in its file bytes
 * when file is set (then *off is where those bytes are in the object). */
static int elf_find_load(const elf_obj *o, uint64_t addr, uint64_t len, int file, uint64_t *off)
{
    for (uint32_t i = 0; i < o->eh.e_phnum; i++) {
        Elf64_Phdr h = elf_phdr(o, i);
        if (h.p_type != PT_LOAD || addr < h.p_vaddr)
            continue;
        if (elf_inside(addr - h.p_vaddr, len, file ? h.p_filesz : h.p_memsz)) {
            if (off)
                *off = h.p_offset + (addr - h.p_vaddr);
            return 1;
        }
    }
    return 0;
}

/* The PT_LOAD holding [addr, addr + len) is writable. */
static int elf_is_writable(const elf_obj *o, uint64_t addr, uint64_t len)
{
    for (uint32_t i = 0; i < o->eh.e_phnum; i++) {
        Elf64_Phdr h = elf_phdr(o, i);
        if (h.p_type == PT_LOAD && (h.p_flags & PF_W) && addr >= h.p_vaddr &&
            elf_inside(addr - h.p_vaddr, len, h.p_memsz))
            return 1;
    }
    return 0;
}

/* The PT_LOAD holding addr is executable. */
static int elf_is_code(const elf_obj *o, uint64_t addr)
{
    for (uint32_t i = 0; i < o->eh.e_phnum; i++) {
        Elf64_Phdr h = elf_phdr(o, i);
        if (h.p_type == PT_LOAD && (h.p_flags & PF_X) && addr >= h.p_vaddr && addr - h.p_vaddr < h.p_memsz)
            return 1;
    }
    return 0;
}

/* Segments the loader reads or changes in memory (not PT_LOAD itself). */
static int elf_in_memory_type(uint32_t type)
{
    return type == PT_DYNAMIC || type == PT_INTERP || type == PT_NOTE || type == PT_PHDR || type == PT_TLS ||
           type == PT_GNU_EH_FRAME || type == PT_GNU_RELRO || type == PT_GNU_PROPERTY;
}

static int elf_check_segments(elf_obj *o)
{
    uint32_t loads = 0, dynamics = 0;
    uint64_t prev_end = 0, span_lo = 0;
    for (uint32_t i = 0; i < o->eh.e_phnum; i++) {
        Elf64_Phdr h = elf_phdr(o, i);
        if (!elf_inside(h.p_offset, h.p_filesz, o->size))
            return elf_fail(o, "ELF program header %u: segment extends past the object's %" PRIu64 " bytes", i,
                            o->size);
        dynamics += h.p_type == PT_DYNAMIC;
        if (h.p_type != PT_LOAD)
            continue;
        loads++;
        if (h.p_filesz > h.p_memsz)
            return elf_fail(o, "ELF program header %u: file size %" PRIu64 " exceeds memory size %" PRIu64, i,
                            (uint64_t)h.p_filesz, (uint64_t)h.p_memsz);
        /* The loader reads its headers and notes back from the mapping. */
        if (!(h.p_flags & PF_R))
            return elf_fail(o, "ELF program header %u: loaded segment is not readable", i);
        /* Code past the file's bytes would be zeros, run as instructions. */
        if ((h.p_flags & PF_X) && h.p_filesz != h.p_memsz)
            return elf_fail(o, "ELF program header %u: executable segment of %" PRIu64 " bytes has %" PRIu64
                            " in the file", i, (uint64_t)h.p_memsz, (uint64_t)h.p_filesz);
        if (h.p_memsz > UINT64_MAX - h.p_vaddr)
            return elf_fail(o, "ELF program header %u: segment wraps around the address space", i);
        if (!elf_pow2(h.p_align) || (h.p_align > 1 && (h.p_vaddr - h.p_offset) % h.p_align))
            return elf_fail(o, "ELF program header %u: alignment %" PRIu64 " is not a power of two dividing "
                            "address minus offset", i, (uint64_t)h.p_align);
        if (loads == 1)
            span_lo = h.p_vaddr;
        if (loads > 1 && h.p_vaddr < prev_end)
            return elf_fail(o, "ELF program header %u: loaded segment at 0x%" PRIx64 " overlaps or precedes "
                            "the one before it", i, (uint64_t)h.p_vaddr);
        prev_end = h.p_vaddr + h.p_memsz;
    }
    if (loads == 0)
        return elf_fail(o, "ELF object has no loadable segment");
    uint64_t span_hi = prev_end;
    if (dynamics != 1)
        return elf_fail(o, "ELF object has %u dynamic segments, expected 1", dynamics);
    for (uint32_t i = 0; i < o->eh.e_phnum; i++) {
        Elf64_Phdr h = elf_phdr(o, i);
        /* Only a TLS segment's initial image is read; the rest is zeroed
         * per thread. */
        uint64_t len = h.p_type == PT_TLS ? h.p_filesz : h.p_memsz;
        if (!elf_in_memory_type(h.p_type) || len == 0)
            continue;
        int inside;
        if (h.p_type == PT_DYNAMIC)
            inside = elf_find_load(o, h.p_vaddr, len, 1, NULL);
        else if (h.p_type == PT_GNU_RELRO)  /* only made read-only: may span gaps (lld pads it to a page) */
            inside = h.p_vaddr >= span_lo && elf_inside(h.p_vaddr - span_lo, len, span_hi - span_lo);
        else
            inside = elf_find_load(o, h.p_vaddr, len, 0, NULL);
        if (!inside)
            return elf_fail(o, "ELF program header %u: segment [0x%" PRIx64 ", %" PRIu64 " bytes] lies outside "
                            "every loaded segment", i, (uint64_t)h.p_vaddr, len);
    }
    return 0;
}

/* Where the section headers say an allocated section is in memory and in
 * the file must agree with the segment that loads it: an edited segment
 * offset would map other bytes (headers, data) where the code should be. */
static int elf_check_placement(elf_obj *o)
{
    for (uint32_t i = 0; i < o->eh.e_shnum; i++) {
        Elf64_Shdr s = elf_shdr(o, i);
        if (!(s.sh_flags & SHF_ALLOC) || s.sh_type == SHT_NOBITS || s.sh_type == SHT_NULL || s.sh_size == 0)
            continue;
        uint64_t off;
        if (!elf_find_load(o, s.sh_addr, s.sh_size, 1, &off) || off != s.sh_offset)
            return elf_fail(o, "ELF section header %u: section at 0x%" PRIx64 " (offset %" PRIu64 ") is not where "
                            "the program headers load it", i, (uint64_t)s.sh_addr, (uint64_t)s.sh_offset);
    }
    return 0;
}

/* ---- the dynamic table and what it points at ------------------------- */

/* What the dynamic table says, by tag (0 when absent). */
typedef struct elf_dyn {
    uint64_t v[DT_NUM];
    int has[DT_NUM];
    uint64_t gnu_hash, versym, verneed, verneednum, verdef, verdefnum, relacount;
    const uint8_t *table;           /* the entries, up to DT_NULL */
    uint64_t count;
} elf_dyn;

/* Bytes [addr, addr + len) from the file, or NULL when they are not all
 * file-backed in one loaded segment. */
static const uint8_t *elf_bytes_at(const elf_obj *o, uint64_t addr, uint64_t len)
{
    uint64_t off;
    if (!elf_find_load(o, addr, len, 1, &off))
        return NULL;
    return o->p + off;
}

static int elf_read_dynamic(elf_obj *o, elf_dyn *d)
{
    Elf64_Phdr dyn = {0};
    for (uint32_t i = 0; i < o->eh.e_phnum; i++)
        if ((dyn = elf_phdr(o, i)).p_type == PT_DYNAMIC)
            break;
    const uint8_t *p = elf_bytes_at(o, dyn.p_vaddr, dyn.p_filesz);
    if (!p || dyn.p_vaddr % 8)
        return elf_fail(o, "ELF dynamic table is misaligned or not in a loaded segment's file bytes");
    /* The loader adds the load address to its pointers in place. */
    if (!elf_is_writable(o, dyn.p_vaddr, dyn.p_filesz))
        return elf_fail(o, "ELF dynamic table is not in a writable segment");
    uint64_t n = dyn.p_filesz / sizeof(Elf64_Dyn);
    for (uint64_t i = 0;; i++) {
        if (i == n)
            return elf_fail(o, "ELF dynamic table has no DT_NULL terminator within its %" PRIu64 " bytes",
                            (uint64_t)dyn.p_filesz);
        Elf64_Dyn e;
        memcpy(&e, p + i * sizeof e, sizeof e);
        if (e.d_tag == DT_NULL) {
            d->table = p;
            d->count = i;
            break;
        }
        /* The loader files tags outside these ranges under indices derived
         * from truncated arithmetic: an unknown tag may land anywhere. */
        if (e.d_tag < 0 || (e.d_tag >= DT_NUM && e.d_tag < DT_LOOS) || e.d_tag > DT_HIPROC)
            return elf_fail(o, "ELF dynamic entry %" PRIu64 ": unknown tag 0x%" PRIx64, i, (uint64_t)e.d_tag);
        if ((e.d_tag == DT_AUXILIARY || e.d_tag == DT_FILTER) && e.d_un.d_val > UINT32_MAX)
            return elf_fail(o, "ELF dynamic entry %" PRIu64 ": filter name offset out of range", i);
        if (e.d_tag >= 0 && e.d_tag < DT_NUM) {
            d->v[e.d_tag] = e.d_un.d_val;
            d->has[e.d_tag] = 1;
        } else if (e.d_tag == DT_GNU_HASH) {
            d->gnu_hash = e.d_un.d_ptr;
        } else if (e.d_tag == DT_VERSYM) {
            d->versym = e.d_un.d_ptr;
        } else if (e.d_tag == DT_VERNEED) {
            d->verneed = e.d_un.d_ptr;
        } else if (e.d_tag == DT_VERNEEDNUM) {
            d->verneednum = e.d_un.d_val;
        } else if (e.d_tag == DT_VERDEF) {
            d->verdef = e.d_un.d_ptr;
        } else if (e.d_tag == DT_VERDEFNUM) {
            d->verdefnum = e.d_un.d_val;
        } else if (e.d_tag == DT_RELACOUNT) {
            d->relacount = e.d_un.d_val;
        }
    }
    return 0;
}

static int elf_check_string(elf_obj *o, uint64_t off, const char *what)
{
    if (off >= o->strsz)
        return elf_fail(o, "ELF %s: string offset %" PRIu64 " is past the %" PRIu64 "-byte string table", what, off,
                        o->strsz);
    return 0;
}

static int elf_check_strings(elf_obj *o, const elf_dyn *d)
{
    if (!d->has[DT_STRTAB] || !d->has[DT_STRSZ] || d->v[DT_STRSZ] == 0)
        return elf_fail(o, "ELF dynamic table has no string table");
    if (!elf_find_load(o, d->v[DT_STRTAB], d->v[DT_STRSZ], 1, &o->strtab_off))
        return elf_fail(o, "ELF dynamic string table [0x%" PRIx64 ", %" PRIu64 " bytes] is not in a loaded "
                        "segment's file bytes", d->v[DT_STRTAB], d->v[DT_STRSZ]);
    o->strsz = d->v[DT_STRSZ];
    /* A terminated table terminates every string that starts inside it. */
    if (o->p[o->strtab_off + o->strsz - 1] != '\0')
        return elf_fail(o, "ELF dynamic string table does not end with a NUL");
    return 0;
}

/* Symbol idx is inside the symbol table's bytes, and so is its name. */
static int elf_check_symbol(elf_obj *o, uint64_t idx, const char *what)
{
    if (idx > UINT32_MAX)
        return elf_fail(o, "ELF %s: symbol index %" PRIu64 " is out of range", what, idx);
    const uint8_t *p = elf_bytes_at(o, o->symtab, (idx + 1) * o->syment);
    if (!p)
        return elf_fail(o, "ELF %s: symbol %" PRIu64 " is past the symbol table's loaded bytes", what, idx);
    Elf64_Sym s;
    memcpy(&s, p + idx * o->syment, sizeof s);
    if (elf_check_string(o, s.st_name, what))
        return -1;
    if (idx > o->max_sym)
        o->max_sym = idx;
    return 0;
}

static int elf_reloc_target_ok(const elf_obj *o, uint64_t addr)
{
    return o->textrel ? elf_find_load(o, addr, 8, 0, NULL) : elf_is_writable(o, addr, 8);
}

static int elf_check_relocs(elf_obj *o, uint64_t addr, uint64_t size, const char *what)
{
    if (size % sizeof(Elf64_Rela))
        return elf_fail(o, "ELF %s: size %" PRIu64 " is not a whole number of entries", what, size);
    const uint8_t *p = elf_bytes_at(o, addr, size);
    if (!p)
        return elf_fail(o, "ELF %s [0x%" PRIx64 ", %" PRIu64 " bytes] is not in a loaded segment's file bytes",
                        what, addr, size);
    for (uint64_t i = 0; i < size / sizeof(Elf64_Rela); i++) {
        Elf64_Rela r;
        memcpy(&r, p + i * sizeof r, sizeof r);
        /* Every relocation writes at most 8 bytes at its offset, into a
         * writable segment unless the object asks for text relocations. */
        if (!elf_reloc_target_ok(o, r.r_offset))
            return elf_fail(o, "ELF %s entry %" PRIu64 ": target 0x%" PRIx64 " is outside every writable segment",
                            what, i, (uint64_t)r.r_offset);
        if (ELF64_R_SYM(r.r_info) && elf_check_symbol(o, ELF64_R_SYM(r.r_info), what))
            return -1;
    }
    return 0;
}

#if defined(__x86_64__)
#define ELF_R_RELATIVE R_X86_64_RELATIVE
#elif defined(__aarch64__)
#define ELF_R_RELATIVE R_AARCH64_RELATIVE
#else
#define ELF_R_RELATIVE R_RISCV_RELATIVE
#endif

/* The loader takes the first DT_RELACOUNT relocations to be relative ones
 * without looking (and asserts it). */
static int elf_check_relacount(elf_obj *o, const elf_dyn *d)
{
    const uint8_t *p = elf_bytes_at(o, d->v[DT_RELA], d->v[DT_RELASZ]);
    if (!d->has[DT_RELA] || d->relacount > d->v[DT_RELASZ] / sizeof(Elf64_Rela))
        return elf_fail(o, "ELF DT_RELACOUNT %" PRIu64 " exceeds the relocations there are", d->relacount);
    for (uint64_t i = 0; i < d->relacount; i++) {
        Elf64_Rela r;
        memcpy(&r, p + i * sizeof r, sizeof r);
        if (ELF64_R_TYPE(r.r_info) != ELF_R_RELATIVE)
            return elf_fail(o, "ELF relocation %" PRIu64 " is not relative, but DT_RELACOUNT says it is", i);
    }
    return 0;
}

/* Packed relative relocations: an address, then bitmaps of the 63 words
 * after it. */
static int elf_check_relr(elf_obj *o, uint64_t addr, uint64_t size)
{
    const uint8_t *p = elf_bytes_at(o, addr, size);
    if (!p || size % 8)
        return elf_fail(o, "ELF RELR relocations [0x%" PRIx64 ", %" PRIu64 " bytes] are not in a loaded "
                        "segment's file bytes", addr, size);
    uint64_t where = 0;
    int have_base = 0;
    for (uint64_t i = 0; i < size / 8; i++) {
        uint64_t e;
        memcpy(&e, p + 8 * i, 8);
        if ((e & 1) == 0) {
            where = e;
            have_base = 1;
            if (!elf_reloc_target_ok(o, where))
                return elf_fail(o, "ELF RELR entry %" PRIu64 ": target 0x%" PRIx64 " is outside every writable "
                                "segment", i, where);
            where += 8;
            continue;
        }
        if (!have_base)
            return elf_fail(o, "ELF RELR entry %" PRIu64 ": a bitmap before any address", i);
        for (unsigned b = 1; b < 64; b++)
            if ((e >> b) & 1 && !elf_reloc_target_ok(o, where + 8ull * (b - 1)))
                return elf_fail(o, "ELF RELR entry %" PRIu64 ": a target is outside every writable segment", i);
        where += 63 * 8;
    }
    return 0;
}

static uint32_t elf_word(const uint8_t *p, uint64_t i)
{
    uint32_t w;
    memcpy(&w, p + 4 * i, 4);
    return w;
}

/* Symbol lookups walk the hash tables: every bucket and chain must stay
 * inside them and name symbols inside the symbol table. */
static int elf_check_sysv_hash(elf_obj *o, uint64_t addr)
{
    const uint8_t *p = elf_bytes_at(o, addr, 8);
    if (!p)
        return elf_fail(o, "ELF hash table at 0x%" PRIx64 " is not in a loaded segment's file bytes", addr);
    uint64_t nbucket = elf_word(p, 0), nchain = elf_word(p, 1);
    if (!(p = elf_bytes_at(o, addr, (2 + nbucket + nchain) * 4)))
        return elf_fail(o, "ELF hash table (%" PRIu64 " buckets, %" PRIu64 " chains) extends past its loaded "
                        "segment", nbucket, nchain);
    for (uint64_t i = 0; i < nbucket + nchain; i++)
        if (elf_word(p, 2 + i) >= nchain)
            return elf_fail(o, "ELF hash table entry %" PRIu64 " is past its %" PRIu64 " chains", i, nchain);
    for (uint64_t i = 0; i < nchain; i++)     /* a lookup may visit any of them */
        if (elf_check_symbol(o, i, "hash table"))
            return -1;
    return 0;
}

static int elf_check_gnu_hash(elf_obj *o, uint64_t addr)
{
    const uint8_t *p = elf_bytes_at(o, addr, 16);
    if (!p || addr % 8)
        return elf_fail(o, "ELF GNU hash table at 0x%" PRIx64 " is misaligned or not in a loaded segment's file "
                        "bytes", addr);
    uint64_t nbuckets = elf_word(p, 0), symoffset = elf_word(p, 1), bloom = elf_word(p, 2);
    uint64_t head = 16 + bloom * 8 + nbuckets * 4;
    if (!elf_pow2(bloom) || !(p = elf_bytes_at(o, addr, head)))
        return elf_fail(o, "ELF GNU hash table (%" PRIu64 " buckets, %" PRIu64 " bloom words) is malformed or "
                        "extends past its loaded segment", nbuckets, bloom);
    const uint8_t *buckets = p + 16 + bloom * 8;
    /* A valid object has no more chain words than it has bytes / 4: a bound
     * on the walk however the buckets are set. */
    uint64_t budget = o->size / 4;
    for (uint64_t b = 0; b < nbuckets; b++) {
        uint64_t idx = elf_word(buckets, b);
        if (idx == 0)
            continue;
        if (idx < symoffset)
            return elf_fail(o, "ELF GNU hash bucket %" PRIu64 " names symbol %" PRIu64 " below the first hashed "
                            "one (%" PRIu64 ")", b, idx, symoffset);
        for (;; idx++) {
            const uint8_t *w = elf_bytes_at(o, addr + head + (idx - symoffset) * 4, 4);
            if (!w || budget-- == 0)
                return elf_fail(o, "ELF GNU hash chain of bucket %" PRIu64 " does not end inside its loaded "
                                "segment", b);
            if (elf_check_symbol(o, idx, "GNU hash table"))
                return -1;
            if (elf_word(w, 0) & 1)
                break;
        }
    }
    return 0;
}

/* Version needs and definitions are chains of records linked by offsets. */
static int elf_check_verneed(elf_obj *o, uint64_t addr, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *p = elf_bytes_at(o, addr, sizeof(Elf64_Verneed));
        if (!p)
            return elf_fail(o, "ELF version need %" PRIu64 " is not in a loaded segment's file bytes", i);
        Elf64_Verneed vn;
        memcpy(&vn, p, sizeof vn);
        if (elf_check_string(o, vn.vn_file, "version need"))
            return -1;
        uint64_t aux = addr + vn.vn_aux;
        for (uint32_t a = 0; a < vn.vn_cnt; a++) {
            const uint8_t *q = elf_bytes_at(o, aux, sizeof(Elf64_Vernaux));
            if (!q)
                return elf_fail(o, "ELF version need %" PRIu64 " aux %u is not in a loaded segment's file bytes", i, a);
            Elf64_Vernaux va;
            memcpy(&va, q, sizeof va);
            if (elf_check_string(o, va.vna_name, "version need aux"))
                return -1;
            aux += va.vna_next;
        }
        addr += vn.vn_next;
    }
    return 0;
}

static int elf_check_verdef(elf_obj *o, uint64_t addr, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *p = elf_bytes_at(o, addr, sizeof(Elf64_Verdef));
        if (!p)
            return elf_fail(o, "ELF version definition %" PRIu64 " is not in a loaded segment's file bytes", i);
        Elf64_Verdef vd;
        memcpy(&vd, p, sizeof vd);
        uint64_t aux = addr + vd.vd_aux;
        for (uint32_t a = 0; a < vd.vd_cnt; a++) {
            const uint8_t *q = elf_bytes_at(o, aux, sizeof(Elf64_Verdaux));
            if (!q)
                return elf_fail(o, "ELF version definition %" PRIu64 " aux %u is not in a loaded segment's file "
                                "bytes", i, a);
            Elf64_Verdaux va;
            memcpy(&va, q, sizeof va);
            if (elf_check_string(o, va.vda_name, "version definition"))
                return -1;
            aux += va.vda_next;
        }
        addr += vd.vd_next;
    }
    return 0;
}

/* The loader dereferences a size entry whenever its table is present. */
static int elf_check_pairs(elf_obj *o, const elf_dyn *d)
{
    static const struct { int tag, size_tag; const char *name; } pairs[] = {
        {DT_RELA, DT_RELASZ, "DT_RELA"}, {DT_RELA, DT_RELAENT, "DT_RELA"}, {DT_JMPREL, DT_PLTRELSZ, "DT_JMPREL"},
        {DT_RELR, DT_RELRENT, "DT_RELR"},
        {DT_JMPREL, DT_PLTREL, "DT_JMPREL"}, {DT_RELR, DT_RELRSZ, "DT_RELR"},
        {DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "DT_INIT_ARRAY"}, {DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "DT_FINI_ARRAY"},
        {DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, "DT_PREINIT_ARRAY"},
    };
    for (unsigned i = 0; i < sizeof pairs / sizeof *pairs; i++)
        if (d->has[pairs[i].tag] && !d->has[pairs[i].size_tag])
            return elf_fail(o, "ELF dynamic table has %s without its size or type", pairs[i].name);
    return 0;
}

/* A packed relative relocation (already checked) sets the word at addr. */
static int elf_relr_sets(const elf_obj *o, const elf_dyn *d, uint64_t addr)
{
    const uint8_t *p = elf_bytes_at(o, d->v[DT_RELR], d->v[DT_RELRSZ]);
    uint64_t where = 0;
    for (uint64_t i = 0; p && i < d->v[DT_RELRSZ] / 8; i++) {
        uint64_t e;
        memcpy(&e, p + 8 * i, 8);
        if ((e & 1) == 0) {
            if (e == addr)
                return 1;
            where = e + 8;
            continue;
        }
        for (unsigned b = 1; b < 64; b++)
            if ((e >> b) & 1 && where + 8ull * (b - 1) == addr)
                return 1;
        where += 63 * 8;
    }
    return 0;
}

/* The loader calls every entry of an init or fini array: each must be set
 * by a relocation (the bytes in the file are link-time addresses), and a
 * relative one must aim at code. */
static int elf_check_calls(elf_obj *o, const elf_dyn *d, int tag, int size_tag, const char *what)
{
    if (!d->has[tag])
        return 0;
    const uint8_t *rela = d->has[DT_RELA] ? elf_bytes_at(o, d->v[DT_RELA], d->v[DT_RELASZ]) : NULL;
    uint64_t nrela = rela ? d->v[DT_RELASZ] / sizeof(Elf64_Rela) : 0;
    for (uint64_t slot = 0; slot < d->v[size_tag] / 8; slot++) {
        uint64_t at = d->v[tag] + 8 * slot;
        int set = 0;
        for (uint64_t i = 0; i < nrela && !set; i++) {
            Elf64_Rela r;
            memcpy(&r, rela + i * sizeof r, sizeof r);
            if (r.r_offset != at)
                continue;
            if (ELF64_R_TYPE(r.r_info) == ELF_R_RELATIVE && !elf_is_code(o, (uint64_t)r.r_addend))
                return elf_fail(o, "ELF %s entry %" PRIu64 " calls 0x%" PRIx64 ", which is not code", what, slot,
                                (uint64_t)r.r_addend);
            set = 1;
        }
        if (!set && d->has[DT_RELR] && elf_relr_sets(o, d, at)) {
            /* A packed relocation adds the load address to the bytes there. */
            uint64_t target;
            const uint8_t *p = elf_bytes_at(o, at, 8);
            if (p)
                memcpy(&target, p, 8);
            if (!p || !elf_is_code(o, target))
                return elf_fail(o, "ELF %s entry %" PRIu64 " does not call code", what, slot);
            set = 1;
        }
        if (!set)
            return elf_fail(o, "ELF %s entry %" PRIu64 " is never relocated", what, slot);
    }
    return 0;
}

/* Arrays of addresses the loader calls or reads lie in loaded memory;
 * functions it calls lie in code. */
static int elf_check_dyn_range(elf_obj *o, const elf_dyn *d, int tag, int size_tag, const char *what)
{
    if (!d->has[tag])
        return 0;
    if (!elf_find_load(o, d->v[tag], size_tag >= 0 ? d->v[size_tag] : 1, 0, NULL))
        return elf_fail(o, "ELF %s at 0x%" PRIx64 " is outside every loaded segment", what, d->v[tag]);
    if ((tag == DT_INIT || tag == DT_FINI) && !elf_is_code(o, d->v[tag]))
        return elf_fail(o, "ELF %s at 0x%" PRIx64 " is not in an executable segment", what, d->v[tag]);
    return 0;
}

static int elf_check_dynamic(elf_obj *o)
{
    elf_dyn d;
    memset(&d, 0, sizeof d);
    if (elf_read_dynamic(o, &d) || elf_check_strings(o, &d))
        return -1;
    static const int string_tags[] = {DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH};
    for (unsigned i = 0; i < sizeof string_tags / sizeof *string_tags; i++)
        if (d.has[string_tags[i]] && elf_check_string(o, d.v[string_tags[i]], "dynamic entry"))
            return -1;
    /* Every DT_NEEDED and filter, not only the last one read above. */
    for (uint64_t i = 0; i < d.count; i++) {
        Elf64_Dyn e;
        memcpy(&e, d.table + i * sizeof e, sizeof e);
        if ((e.d_tag == DT_NEEDED || e.d_tag == DT_AUXILIARY || e.d_tag == DT_FILTER) &&
            elf_check_string(o, e.d_un.d_val, "DT_NEEDED or filter"))
            return -1;
    }
    if (!d.has[DT_SYMTAB])
        return elf_fail(o, "ELF dynamic table has no symbol table");
    o->symtab = d.v[DT_SYMTAB];
    o->syment = d.has[DT_SYMENT] ? d.v[DT_SYMENT] : sizeof(Elf64_Sym);
    if (o->syment != sizeof(Elf64_Sym))
        return elf_fail(o, "ELF symbol entry size %" PRIu64 ", expected %zu", o->syment, sizeof(Elf64_Sym));
    if (elf_check_symbol(o, 0, "symbol table"))
        return -1;
    if (d.has[DT_REL] || d.has[DT_RELSZ])
        return elf_fail(o, "ELF DT_REL relocations are not used on this host");
    if (d.has[DT_RELAENT] && d.v[DT_RELAENT] != sizeof(Elf64_Rela))
        return elf_fail(o, "ELF relocation entry size %" PRIu64 ", expected %zu", d.v[DT_RELAENT],
                        sizeof(Elf64_Rela));
    if (elf_check_pairs(o, &d))
        return -1;
    o->textrel = d.has[DT_TEXTREL] || (d.has[DT_FLAGS] && (d.v[DT_FLAGS] & DF_TEXTREL));
    if (d.has[DT_RELA] && elf_check_relocs(o, d.v[DT_RELA], d.v[DT_RELASZ], "relocations"))
        return -1;
    if (d.relacount && elf_check_relacount(o, &d))
        return -1;
    if (d.has[DT_JMPREL]) {
        if (d.has[DT_PLTREL] && d.v[DT_PLTREL] != DT_RELA)
            return elf_fail(o, "ELF PLT relocations of type %" PRIu64 " are not used on this host", d.v[DT_PLTREL]);
        if (elf_check_relocs(o, d.v[DT_JMPREL], d.v[DT_PLTRELSZ], "PLT relocations"))
            return -1;
    }
    if (d.has[DT_RELRENT] && d.v[DT_RELRENT] != 8)
        return elf_fail(o, "ELF RELR entry size %" PRIu64 ", expected 8", d.v[DT_RELRENT]);
    if (d.has[DT_RELR] && elf_check_relr(o, d.v[DT_RELR], d.v[DT_RELRSZ]))
        return -1;
    if (d.has[DT_HASH] && elf_check_sysv_hash(o, d.v[DT_HASH]))
        return -1;
    if (d.gnu_hash && elf_check_gnu_hash(o, d.gnu_hash))
        return -1;
    if (!d.has[DT_HASH] && !d.gnu_hash)
        return elf_fail(o, "ELF dynamic table has no hash table");
    if (d.verneed && elf_check_verneed(o, d.verneed, d.verneednum))
        return -1;
    if (d.verdef && elf_check_verdef(o, d.verdef, d.verdefnum))
        return -1;
    /* The loader reads a version index per symbol it looks at. */
    if (d.versym && !elf_bytes_at(o, d.versym, (o->max_sym + 1) * 2))
        return elf_fail(o, "ELF symbol version table at 0x%" PRIx64 " does not cover symbol %" PRIu64, d.versym,
                        o->max_sym);
    if (elf_check_dyn_range(o, &d, DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "init array") ||
        elf_check_dyn_range(o, &d, DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "fini array") ||
        elf_check_dyn_range(o, &d, DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, "preinit array") ||
        elf_check_dyn_range(o, &d, DT_INIT, -1, "init function") ||
        elf_check_dyn_range(o, &d, DT_FINI, -1, "fini function") ||
        elf_check_dyn_range(o, &d, DT_PLTGOT, -1, "global offset table") ||
        elf_check_calls(o, &d, DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "init array") ||
        elf_check_calls(o, &d, DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "fini array") ||
        elf_check_calls(o, &d, DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, "preinit array"))
        return -1;
    return 0;
}

int elf_check(const void *p, uint64_t size, char *why, size_t why_size)
{
    elf_obj o;
    memset(&o, 0, sizeof o);
    o.p = p;
    o.size = size;
    o.why = why;
    o.why_size = why_size;
    if (!p)
        return elf_fail(&o, "no bytes");
    if (elf_check_header(&o) || elf_check_tables(&o) || elf_check_sections(&o) || elf_check_segments(&o) ||
        elf_check_placement(&o) || elf_check_dynamic(&o))
        return -1;
    return 0;
}
