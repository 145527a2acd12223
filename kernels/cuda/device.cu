// Host-side CUDA runtime helpers (see device.h).
#include "cuda/device.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "cpu/check.h"

namespace stepwise::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();   // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

int multiprocessor_count() {
  int device = 0, count = 0;
  STEPWISE_CUDA_CHECK(cudaGetDevice(&device));
  STEPWISE_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

int prepare_launch(const void* kernel, int threads, size_t dynamic_smem, const char* op) {
  static std::mutex mutex;
  static std::map<std::tuple<const void*, int, int, size_t>, int> blocks_per_sm;  // (kernel, device, threads, bytes)
  int device = 0;
  STEPWISE_CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(kernel, device, threads, dynamic_smem);
  if (const auto it = blocks_per_sm.find(key); it != blocks_per_sm.end()) return it->second;
  int limit = 0;
  STEPWISE_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (dynamic_smem > static_cast<size_t>(limit))
    cpu::kernel_fail(op, "needs ", dynamic_smem, " bytes of shared memory per block; the device allows ", limit);
  STEPWISE_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_smem)));
  int per_sm = 0;
  STEPWISE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, dynamic_smem));
  return blocks_per_sm.emplace(key, std::max(per_sm, 1)).first->second;
}

void check(cudaError_t e, const char* what, const char* file, int line) {
  if (e == cudaSuccess) return;
  throw std::runtime_error(std::string("CUDA error at ") + file + ":" + std::to_string(line) + ": " + what + ": " +
                           cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

void* device_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess)
    throw std::runtime_error("cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(e));
  return p;
}

void device_free(void* p) noexcept {
  if (p) (void)cudaFree(p);
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) STEPWISE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) STEPWISE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void device_synchronize() { STEPWISE_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace stepwise::cuda
