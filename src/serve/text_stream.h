// Incremental detokenisation of one request's generated tokens with stop strings: emits text only as complete UTF-8
// (a character split over byte-fallback tokens waits for its last byte), holds back a tail that could still become
// a stop string, and on a stop string ends the text just before it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace stepwise {

class Tokenizer;

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence (nor in U+FFFD replacement
// characters, which a decoder writes for a sequence whose remaining bytes have not arrived yet).
size_t complete_utf8_prefix(const std::string& s);

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop);

  // Appends a generated token; returns the text that can be emitted now (possibly empty).
  std::string push(int32_t token);
  // Generation ended (length, end of turn): everything held back that is not a stop string.
  std::string flush();
  bool stopped() const { return stopped_; }   // a stop string appeared; no text after it is ever emitted

 private:
  std::string advance(bool final);
  const Tokenizer& tokenizer_;
  std::vector<std::string> stop_;
  std::vector<int32_t> ids_;
  size_t emitted_ = 0;   // bytes of the decoded text already emitted
  bool stopped_ = false;
};

}  // namespace stepwise
