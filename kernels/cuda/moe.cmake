# CUDA MoE ops (cuda/moe.h): router, routing plan, permute / combine, grouped expert linears.
list(APPEND STEPWISE_CUDA_SOURCES
  cuda/router.cu cuda/route_plan.cu cuda/permute_combine.cu cuda/grouped_linear.cu cuda/grouped_gemm.cuh)
