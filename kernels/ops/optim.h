// Optimizer ops: AdamW with decoupled weight decay and fp32 moments; global gradient norm and clipping.
#pragma once
#include <cstdint>

namespace stepwise {

// One AdamW step over n parameters (step counts from 1 for bias correction):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr * (m/(1-b1^step) / (sqrt(v/(1-b2^step)) + eps) + wd * p)
struct AdamWParams {
  float* param = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  const float* grad = nullptr;
  int64_t n = 0;
  int64_t step = 1;
  float lr = 0, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0;
};

namespace cpu {
void adamw_update(const AdamWParams& p);
double sum_squares(const float* x, int64_t n);   // accumulated in double
void scale_inplace(float* x, int64_t n, float s);
bool all_finite(const float* x, int64_t n);
}  // namespace cpu

}  // namespace stepwise
