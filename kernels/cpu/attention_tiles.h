// Tiling and masking helpers of the CPU flash attention (attention.cpp): which query rows a work item covers, which
// keys it needs, the causal/segment visibility of a (query tile, key tile) block, and the masked exp / max row passes.
// Private to kernels/cpu.
#pragma once
#include <cstdint>

namespace stepwise::cpu {

constexpr int64_t kAttentionTileRows = 256;  // target rows (queries x heads) of one stacked query tile
constexpr int64_t kAttentionKeyTile = 128;   // keys per key tile

struct TileRange {
  int64_t b = 0, begin = 0, count = 0;  // batch, first query, number of queries
};

struct AttentionTiling {
  int64_t B = 0, Tq = 0, Tk = 0, H = 0, D = 0, q_offset = 0;
  int64_t query_tile = 0, key_tile = 0, query_tiles = 0;

  // Work item -> (batch, query tile); the last (longest, under causality) tiles come first for load balance.
  TileRange query_range(int64_t item) const {
    TileRange t;
    t.b = item / query_tiles;
    const int64_t tile = query_tiles - 1 - item % query_tiles;
    t.begin = tile * query_tile;
    t.count = Tq - t.begin < query_tile ? Tq - t.begin : query_tile;
    return t;
  }

  // One past the last key any query of the tile may see (causal): position of its last query + 1.
  int64_t key_end(const TileRange& t) const {
    const int64_t end = q_offset + t.begin + t.count;
    return end < Tk ? end : Tk;
  }

  // visible (count, nk): 1 where query begin+i may see key j0+c. Returns true when every entry is visible (then
  // visible is left unfilled and callers take the unmasked path).
  bool fill_visibility(const TileRange& t, int64_t j0, int64_t nk, const int32_t* seg, unsigned char* visible) const;
};

// Max of s over visible entries (all when all_visible); -inf when none is visible.
float masked_row_max(const float* s, const unsigned char* visible, int64_t n, bool all_visible);
double masked_row_max(const double* s, const unsigned char* visible, int64_t n, bool all_visible);

// s[c] = visible ? exp(s[c] - shift) : 0, returning the row sum. The float version uses a vectorised exp
// (relative error ~1e-7, inputs below -87 flush to ~1e-38).
float exp_shifted_row(float* s, const unsigned char* visible, int64_t n, bool all_visible, float shift);
double exp_shifted_row(double* s, const unsigned char* visible, int64_t n, bool all_visible, double shift);

}  // namespace stepwise::cpu
