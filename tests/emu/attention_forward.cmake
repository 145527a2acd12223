# Emulator test of the bf16 tensor-core attention forward (kernels/cuda/attention_forward_mma.cuh).
stepwise_emu_test(test_emu_attention_forward SOURCES test_emu_attention_forward.cpp)
