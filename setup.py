"""Build: the cffi extension (host API + sim platform), and the two device
programs it loads, libsimpler_aicpu.so and libsimpler_aicore.so, installed
beside the extension inside the package."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_ext import build_ext

DEVICE_LIBS = {
    "libsimpler_aicpu.so": [
        "csrc/aicpu/aicpu_main.c", "csrc/aicpu/sched_loop.c", "csrc/aicpu/hbg_scheduler.c",
        "csrc/aicpu/tmr_scheduler.c", "csrc/aicpu/tmr_orchestrator.c",
        # shared with the host library: each program gets its own copy
        "csrc/common/error.c", "csrc/common/so_load.c", "csrc/common/addr_map.c",
        "csrc/runtime/deps/region.c", "csrc/runtime/deps/tracker.c", "csrc/runtime/task_check.c",
    ],
    "libsimpler_aicore.so": ["csrc/aicore/executor.c"],
}
DEVICE_CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-O2", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra",
                 "-Wno-unused-parameter", "-pthread"]


class BuildWithDeviceLibs(build_ext):
    def run(self):
        super().run()
        out_dir = os.path.dirname(self.get_ext_fullpath("simpler._simpler_c"))
        os.makedirs(out_dir, exist_ok=True)
        for name, sources in DEVICE_LIBS.items():
            objects = self.compiler.compile(
                sources,
                output_dir=os.path.join(self.build_temp, "device"),
                include_dirs=["csrc/include", "csrc"],
                extra_postargs=DEVICE_CFLAGS,
            )
            self.compiler.link_shared_object(
                objects, os.path.join(out_dir, name), libraries=["pthread"])
        # The public headers travel with the package: KernelCompiler needs them.
        shutil.copytree("csrc/include/simpler", os.path.join(out_dir, "include", "simpler"),
                        dirs_exist_ok=True)


setup(
    cffi_modules=["simpler/_build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildWithDeviceLibs},
)
