// Keeps OpenBLAS single-threaded while our own OpenMP threads each call it (the pthread OpenBLAS would otherwise
// start its own threads inside every call and oversubscribe the cores). Restores the previous count on scope exit.
// Private to kernels/cpu. Not safe against other threads changing the BLAS thread count at the same time.
#pragma once
#include <cblas.h>

namespace stepwise::cpu {

class BlasSingleThreadScope {
 public:
  explicit BlasSingleThreadScope(bool active) : saved_(active ? openblas_get_num_threads() : 1) {
    if (saved_ != 1) openblas_set_num_threads(1);
  }
  ~BlasSingleThreadScope() {
    if (saved_ != 1) openblas_set_num_threads(saved_);
  }
  BlasSingleThreadScope(const BlasSingleThreadScope&) = delete;
  BlasSingleThreadScope& operator=(const BlasSingleThreadScope&) = delete;

 private:
  int saved_;
};

}  // namespace stepwise::cpu
