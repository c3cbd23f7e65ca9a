"""Build: the cffi extension (host API, sim and onboard platforms), the two
device programs the platforms load, libsimpler_aicpu.so and
libsimpler_aicore.so, and the onboard device process simpler-device, all
installed beside the extension inside the package."""
import os
import runpy
import shutil

from setuptools import setup
from setuptools.command.build_ext import build_ext

# One list of sources, in the cffi build module (loaded by path: the
# package itself cannot be imported before it is built).
_BUILD = runpy.run_path("simpler/_build_ffi.py")
DEVICE_LIBS, DEVICE_PROGRAMS = _BUILD["DEVICE_LIBS"], _BUILD["DEVICE_PROGRAMS"]
FLAGS = _BUILD["FLAGS"]


class BuildWithDeviceLibs(build_ext):
    def run(self):
        super().run()
        out_dir = os.path.dirname(self.get_ext_fullpath("simpler._simpler_c"))
        os.makedirs(out_dir, exist_ok=True)
        for name, sources in DEVICE_LIBS.items():
            objects = self.compiler.compile(
                sources,
                output_dir=os.path.join(self.build_temp, "device"),
                include_dirs=FLAGS["INCLUDE_DIRS"],
                extra_postargs=FLAGS["DEVICE_LIB"],
            )
            self.compiler.link_shared_object(
                objects, os.path.join(out_dir, name), libraries=["pthread"])
        for name, sources in DEVICE_PROGRAMS.items():
            objects = self.compiler.compile(
                sources,
                output_dir=os.path.join(self.build_temp, "program"),
                include_dirs=FLAGS["INCLUDE_DIRS"],
                extra_postargs=FLAGS["DEVICE_PROGRAM"],
            )
            # Kernels are opened RTLD_LOCAL and resolve what they do not
            # carry against the process's global scope: link libm whether
            # or not the device uses it, so a kernel calling sqrt resolves
            # here as it does in the Python process (which links libm).
            self.compiler.link_executable(
                objects, name, output_dir=out_dir, libraries=["pthread", "dl", "m"],
                extra_preargs=["-Wl,--no-as-needed"])
        # The public headers travel with the package: KernelCompiler needs them.
        shutil.copytree("csrc/include/simpler", os.path.join(out_dir, "include", "simpler"),
                        dirs_exist_ok=True)


setup(
    cffi_modules=["simpler/_build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildWithDeviceLibs},
)
