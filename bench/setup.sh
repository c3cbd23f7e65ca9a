#!/usr/bin/env bash
# The benchmark's own setup: the peer runtimes it compares against, from
# Debian's packages (oneTBB; LLVM's OpenMP runtime and clang, optional).
# Not needed for simpler itself or its tests.
set -euo pipefail
if [ ! -e /usr/include/oneapi/tbb.h ] || ! command -v clang >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq libtbb-dev libomp-dev clang >/dev/null
fi
echo "peer runtimes ready: oneTBB $(dpkg-query -W -f='${Version}' libtbb-dev 2>/dev/null), libomp $(dpkg-query -W -f='${Version}' libomp-dev 2>/dev/null)"
