"""The C compiler flags, in one place.

The build (setup.py and the cffi build module, which load this file by
path), KernelCompiler and the C tests all take their flags from here, so a
warning turned on is on everywhere.
"""
LANGUAGE = ["-std=c11", "-D_GNU_SOURCE", "-pthread"]
WARNINGS = ["-Wall", "-Wextra", "-Wno-unused-parameter"]
DEBUG = ["-g", "-O1", "-fno-omit-frame-pointer"]
# Relative to the project root: where setup.py runs.
INCLUDE_DIRS = ["csrc/include", "csrc", "platform"]

# The extension (host API, runtimes' host halves, platforms).
HOST = LANGUAGE + ["-O2"] + WARNINGS
# The AICPU runtime and the AICore executor: only their entry points exported.
DEVICE_LIB = HOST + ["-fPIC", "-fvisibility=hidden"]
# simpler-device.
DEVICE_PROGRAM = HOST + ["-fPIC"]
# C unit and sanitizer tests (each adds its -fsanitize=...).
CHECKED = LANGUAGE + DEBUG + WARNINGS + ["-Werror"]
# Kernels and orchestrations KernelCompiler builds.
KERNEL = ["-std=c11", "-O2", "-fPIC", "-shared"] + WARNINGS + [
    "-Werror=implicit-function-declaration",
    # unwind tables let a timed-out kernel be cancelled where it stands
    "-fasynchronous-unwind-tables",
]
