// FP8 E4M3 (OCP "E4M3FN": 1 sign, 4 exponent bits with bias 7, 3 mantissa bits; max 448, no infinities, NaN =
// S.1111.111) scalar encode/decode and 128x128 block quantisation of linear weights, as DeepSeek-V3 / Step-3 FP8
// checkpoints store them: the F8_E4M3 weight plus a F32 "<name>_scale_inv" per block, dequant = fp8 * scale_inv.
#pragma once
#include <cstdint>
#include <vector>

namespace stepwise {

constexpr float kFp8E4M3Max = 448.0f;      // largest finite magnitude (code 0x7E)
constexpr int64_t kFp8BlockSize = 128;     // block edge of the weight scales (rows and columns)

// f32 -> e4m3, round to nearest even. Finite values beyond the range and +-inf saturate to +-448 (the "satfinite"
// convention of Hopper's cvt instructions); NaN gives 0x7F with the input's sign; -0 stays -0.
uint8_t f32_to_fp8_e4m3(float x);
// e4m3 -> f32, exact (every e4m3 value is an f32). 0x7F / 0xFF decode to NaN.
float fp8_e4m3_to_f32(uint8_t code);

// Shape [ceil(rows/128), ceil(cols/128)] of the scales of a (rows, cols) weight.
std::vector<int64_t> fp8_scale_shape(int64_t rows, int64_t cols);

// Block-quantises w (rows, cols) row-major into q (rows, cols) and scale_inv (ceil(rows/128), ceil(cols/128)):
// per 128x128 block, scale_inv = amax / 448 (1 for an all-zero block) and q = e4m3(w / scale_inv).
// Every element of w must be finite (the caller checks and names the tensor).
void fp8_block_quantize(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scale_inv);
// Inverse: w = e4m3_to_f32(q) * scale_inv of the element's block.
void fp8_block_dequantize(const uint8_t* q, const float* scale_inv, int64_t rows, int64_t cols, float* w);

}  // namespace stepwise
