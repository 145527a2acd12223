# kernel tests of this part: MFA attention, router, route plan, permute/combine, grouped linear (+ attention timing).
stepwise_test(test_kernels_moe LABELS main TIMEOUT 120
  SOURCES test_attention.cpp test_moe_ops.cpp
  LIBS stepwise_kernels stepwise_core)
