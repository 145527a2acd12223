// The emulator's runtime (runtime.cpp): asynchronous copies between device memory and pinned host memory complete
// for the host only at a synchronisation covering them (stream, event, device, or a call that synchronises), so a
// host that reads a download too early sees 0xFF bytes and one that rewrites an upload's pinned source too early aborts.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "emulator.h"

namespace {

struct PinnedCopies : ::testing::Test {
  cudaStream_t stream = nullptr;
  float* device = nullptr;
  float* pinned = nullptr;
  static constexpr int n = 8;
  void SetUp() override {
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&device, sizeof(float) * n), cudaSuccess);
    ASSERT_EQ(cudaMallocHost(&pinned, sizeof(float) * n), cudaSuccess);
  }
  void TearDown() override {
    cudaFreeHost(pinned);
    cudaFree(device);
    cudaStreamDestroy(stream);
  }
  void fill_device(float base) {
    float host[n];
    for (int i = 0; i < n; ++i) host[i] = base + static_cast<float>(i);
    ASSERT_EQ(cudaMemcpy(device, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
  }
};

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

TEST_F(PinnedCopies, DownloadToPinnedArrivesAtStreamSynchronize) {
  fill_device(1);
  ASSERT_EQ(cudaMemcpyAsync(pinned, device, sizeof(float) * n, cudaMemcpyDeviceToHost, stream), cudaSuccess);
  fill_device(100);   // a later device write does not change what the copy read
  EXPECT_EQ(bits(pinned[0]), 0xffffffffu);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  for (int i = 0; i < n; ++i) EXPECT_EQ(pinned[i], 1.0f + static_cast<float>(i));
}

TEST_F(PinnedCopies, EventCoversOnlyTheCopiesBeforeItsRecord) {
  cudaEvent_t done;
  ASSERT_EQ(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), cudaSuccess);
  fill_device(1);
  ASSERT_EQ(cudaMemcpyAsync(pinned, device, sizeof(float) * 4, cudaMemcpyDeviceToHost, stream), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(done, stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(pinned + 4, device + 4, sizeof(float) * 4, cudaMemcpyDeviceToHost, stream), cudaSuccess);
  ASSERT_EQ(cudaEventSynchronize(done), cudaSuccess);
  EXPECT_EQ(pinned[3], 4.0f);
  EXPECT_EQ(bits(pinned[4]), 0xffffffffu);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(pinned[7], 8.0f);
  cudaEventDestroy(done);
}

TEST_F(PinnedCopies, UploadFromPinnedIsOnTheDeviceAtOnce) {
  for (int i = 0; i < n; ++i) pinned[i] = static_cast<float>(-i);
  ASSERT_EQ(cudaMemcpyAsync(device, pinned, sizeof(float) * n, cudaMemcpyHostToDevice, stream), cudaSuccess);
  EXPECT_EQ(device[5], -5.0f);   // kernels enqueued after the copy see it
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  pinned[0] = 42;                // allowed after the synchronisation
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
}

TEST_F(PinnedCopies, RewritingAPendingUploadsSourceAborts) {
  for (int i = 0; i < n; ++i) pinned[i] = static_cast<float>(i);
  ASSERT_EQ(cudaMemcpyAsync(device, pinned, sizeof(float) * n, cudaMemcpyHostToDevice, stream), cudaSuccess);
  pinned[2] = 7;   // the device may not have read it yet
  EXPECT_DEATH(cudaStreamSynchronize(stream), "rewritten while a cudaMemcpyAsync from it");
  pinned[2] = 2;   // this process's copy still holds the pending upload: restore its source for TearDown
}

TEST_F(PinnedCopies, PageableMemoryCopiesAreDoneWhenTheCallReturns) {
  float host[n];
  fill_device(3);
  ASSERT_EQ(cudaMemcpyAsync(host, device, sizeof host, cudaMemcpyDeviceToHost, stream), cudaSuccess);
  EXPECT_EQ(host[1], 4.0f);
}

}  // namespace
