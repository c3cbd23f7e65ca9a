/*
 * Checking a shared object's ELF structure against its bytes before the
 * dynamic loader sees it.
 *
 * The loader trusts what the headers say: a program header naming bytes
 * past the end of a truncated object makes it map pages past the end of the
 * file (SIGBUS on first touch), a dynamic table without its terminator or a
 * relocation aimed outside the object makes it read or write wild
 * addresses. So before an object is loaded every table the loader reads is
 * checked to lie inside the object's bytes (or its loaded segments), with
 * no overflow and sane alignment: the ELF header (class, data, version,
 * type ET_DYN, this host's machine), the program and section header tables,
 * each segment, the dynamic table and what it points at (string and symbol
 * tables, hash tables, relocations, version tables).
 */
#ifndef SIMPLER_COMMON_ELF_CHECK_H
#define SIMPLER_COMMON_ELF_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Room for any reason elf_check gives. */
#define ELF_CHECK_WHY_MAX 192

/* 0 when p[0..size) is a shared object this host's loader can load without
 * reaching outside it; otherwise -1, and why (why_size bytes) says what is
 * wrong, e.g. "ELF program header 3: segment extends past the object's
 * 4096 bytes". */
int elf_check(const void *p, uint64_t size, char *why, size_t why_size);

#endif
