# kernel tests of this part: stepwise_test(... LABELS main SOURCES ... LIBS stepwise_kernels)
stepwise_test(test_kernels_dense LABELS main TIMEOUT 60
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_embedding.cpp ${CMAKE_CURRENT_SOURCE_DIR}/test_rmsnorm.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/test_rope.cpp ${CMAKE_CURRENT_SOURCE_DIR}/test_linear.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/test_swiglu.cpp ${CMAKE_CURRENT_SOURCE_DIR}/test_lm_head_loss.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/test_adamw.cpp
  LIBS stepwise_kernels)

# Throughput probe (not a test): SGEMM through cpu/gemm.h, linear forward/backward and the LM head loss at
# transformer shapes. Run: build/cpu-release/tests/kernels/bench_kernels_dense
add_executable(bench_kernels_dense ${CMAKE_CURRENT_SOURCE_DIR}/bench_dense.cpp)
target_link_libraries(bench_kernels_dense PRIVATE stepwise_core stepwise_kernels)
stepwise_target_flags(bench_kernels_dense)
