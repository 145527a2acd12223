# The grouped expert GEMM kernel (kernels/cuda/grouped_gemm.cuh) on the CPU SIMT emulator against the CPU reference.
stepwise_emu_test(test_emu_grouped_gemm SOURCES test_emu_grouped_gemm.cpp)
