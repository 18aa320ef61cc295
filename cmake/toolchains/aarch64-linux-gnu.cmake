# Cross build for AArch64 Linux with Debian's g++-aarch64-linux-gnu. Programs
# (test discovery included) run under qemu-user, with -L pointing it at the
# AArch64 loader and libraries that the cross toolchain installs.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
# Build tools are the host's; libraries and headers must be the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# BOTH, not ONLY: Debian installs Catch2 2.x (header-only) once, with its
# package config in /usr/lib/cmake outside any multiarch directory, and
# /usr/aarch64-linux-gnu holds no copy. The target's own packages are still
# searched first.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
