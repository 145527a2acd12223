// Implementation of the corpus generator's shared helpers (see corpus_text.h).
#include "data/corpus_text.h"

#include <algorithm>

namespace stepwise {

uint64_t CorpusRng::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t CorpusRng::below(uint64_t n) {
  SW_CHECK(n > 0);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // accept only whole multiples of n
  uint64_t x = next();
  while (x >= limit) x = next();
  return x % n;
}

int CorpusRng::range(int lo, int hi) {
  SW_CHECK(lo <= hi);
  return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo) + 1));
}

std::vector<std::string> CorpusRng::subset(const std::vector<std::string>& items, size_t lo, size_t hi) {
  if (items.empty()) return {};
  lo = std::max<size_t>(1, std::min(lo, items.size()));
  hi = std::max(lo, std::min(hi, items.size()));
  const size_t count = static_cast<size_t>(range(static_cast<int>(lo), static_cast<int>(hi)));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  shuffle(order);
  order.resize(count);
  std::sort(order.begin(), order.end());
  std::vector<std::string> out;
  for (size_t i : order) out.push_back(items[i]);
  return out;
}

uint64_t corpus_stream_seed(uint64_t seed, std::string_view tag) {
  uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a of the tag, mixed with the seed
  for (unsigned char ch : tag) h = (h ^ ch) * 0x100000001B3ULL;
  CorpusRng mixer(seed ^ h);
  return mixer.next();
}

std::string fill_template(std::string_view pattern, const TemplateVars& vars) {
  std::string out;
  size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] != '{') {
      out.push_back(pattern[i++]);
      continue;
    }
    const size_t close = pattern.find('}', i);
    SW_CHECK(close != std::string_view::npos);
    const std::string key(pattern.substr(i + 1, close - i - 1));
    auto it = vars.find(key);
    if (it == vars.end()) throw std::logic_error("corpus template uses unknown placeholder {" + key + "}");
    out += it->second;
    i = close + 1;
  }
  return out;
}

std::string join_items(const std::vector<std::string>& items, std::string_view joiner) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += (i + 1 == items.size() && joiner != "、") ? std::string(joiner) : std::string("、");
    out += items[i];
  }
  return out;
}

std::string strip_period(const std::string& sentence) {
  const std::string period = "。";
  if (sentence.size() >= period.size() && sentence.compare(sentence.size() - period.size(), period.size(), period) == 0)
    return sentence.substr(0, sentence.size() - period.size());
  return sentence;
}

int64_t count_han_chars(std::string_view s) {
  int64_t count = 0;
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) { ++i; continue; }
    int len = (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    if (i + len > s.size()) break;
    uint32_t cp = 0;
    if (len == 3)
      cp = ((b & 0x0F) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3F);
    if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF)) ++count;
    i += len;
  }
  return count;
}

}  // namespace stepwise
