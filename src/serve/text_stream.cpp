// TextStream: re-decodes the generated ids, cuts at the first stop string, and emits the stable, complete part.
#include "serve/text_stream.h"

#include <algorithm>

#include "data/tokenizer.h"

namespace stepwise {

size_t complete_utf8_prefix(const std::string& s) {
  size_t end = s.size();
  // a trailing partial sequence: a lead byte whose continuation bytes are not all there yet
  for (size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;   // continuation byte: keep looking for the lead
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back) end = s.size() - back;
    break;
  }
  // trailing replacement characters (U+FFFD = EF BF BD): bytes of a character still arriving
  static const std::string kReplacement = "\xEF\xBF\xBD";
  while (end >= 3 && s.compare(end - 3, 3, kReplacement) == 0) end -= 3;
  return end;
}

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop)
    : tokenizer_(tokenizer), stop_(std::move(stop)) {
  stop_.erase(std::remove(stop_.begin(), stop_.end(), std::string()), stop_.end());
}

std::string TextStream::push(int32_t token) {
  if (stopped_) return {};
  ids_.push_back(token);
  return advance(false);
}

std::string TextStream::flush() { return stopped_ ? std::string() : advance(true); }

std::string TextStream::advance(bool final) {
  const std::string text = tokenizer_.decode(ids_);
  const size_t complete = final ? text.size() : complete_utf8_prefix(text);
  // the earliest stop string (it cannot start inside emitted text: that text never ends with a stop prefix)
  size_t stop_at = std::string::npos;
  for (const std::string& s : stop_) {
    const size_t from = emitted_ >= s.size() ? emitted_ - s.size() + 1 : 0;
    const size_t p = text.find(s, from);
    if (p != std::string::npos && p < stop_at) stop_at = p;
  }
  if (stop_at != std::string::npos) {
    stopped_ = true;
    const size_t end = std::max(stop_at, emitted_);
    std::string out = text.substr(emitted_, end - emitted_);
    emitted_ = end;
    return out;
  }
  size_t end = complete;
  if (!final) {   // hold back the longest tail that is a proper prefix of a stop string
    size_t hold = 0;
    for (const std::string& s : stop_)
      for (size_t k = std::min(s.size() - 1, end); k > hold; --k)
        if (text.compare(end - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    end -= hold;
  }
  if (end <= emitted_) return {};
  std::string out = text.substr(emitted_, end - emitted_);
  emitted_ = end;
  return out;
}

}  // namespace stepwise
