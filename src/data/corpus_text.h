// Shared helpers of the corpus generator: a seeded PRNG that is the same on every platform and standard library
// (splitmix64 with its own bounded integers and shuffle), {placeholder} templates, Chinese list joining, Han counting.
// Nothing here may depend on unordered-container order or std:: distributions.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace stepwise {

// splitmix64: tiny, fast, and fully specified, so a seed gives the same stream everywhere.
class CorpusRng {
 public:
  explicit CorpusRng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint64_t below(uint64_t n);             // uniform in [0, n), n > 0 (rejection sampling, no modulo bias)
  int range(int lo, int hi);              // uniform in [lo, hi]
  bool percent(int p) { return static_cast<int>(below(100)) < p; }  // true with probability p/100
  template <class T>
  const T& pick(const std::vector<T>& items) {
    SW_CHECK(!items.empty());
    return items[below(items.size())];
  }
  template <class T>
  void shuffle(std::vector<T>& items) {   // Fisher-Yates
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }
  // A random non-empty subset of `items` (size in [min(lo, n), min(hi, n)]), in the items' original order.
  std::vector<std::string> subset(const std::vector<std::string>& items, size_t lo, size_t hi);

 private:
  uint64_t state_;
};

// A stream seed derived from the run seed and a stream tag, so each split has its own independent stream.
uint64_t corpus_stream_seed(uint64_t seed, std::string_view tag);

using TemplateVars = std::map<std::string, std::string>;

// Replaces every {key} in `pattern` by vars[key]; a key missing from `vars` is a bug (std::logic_error).
std::string fill_template(std::string_view pattern, const TemplateVars& vars);

// "A、B和C" (joiner "和"), "A、B或C" (joiner "或"), "A、B、C" (joiner "、").
std::string join_items(const std::vector<std::string>& items, std::string_view joiner = "和");

// Drops one trailing "。" (so a KB sentence can be embedded in a longer one).
std::string strip_period(const std::string& sentence);

// Number of Han characters (CJK Unified Ideographs and Extension A) in UTF-8 text.
int64_t count_han_chars(std::string_view utf8);

}  // namespace stepwise
