// Small string utilities shared by config readers: edit distance and "did you mean" suggestions, splitting.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace stepwise {

// Levenshtein distance between a and b (bytes).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `key` by edit distance, or "" when none is reasonably close.
std::string closest_match(std::string_view key, const std::vector<std::string>& candidates);

// Splits on a single character; empty pieces are kept.
std::vector<std::string> split(std::string_view s, char sep);

}  // namespace stepwise
