// Implementation of CMB-style answer extraction (see answer_extraction.h). The pattern is matched by hand instead of
// std::regex: libstdc++'s regex recurses per character and overflows the stack on long model outputs.
#include "eval/answer_extraction.h"

#include <algorithm>
#include <array>
#include <optional>

#include "eval/utf8.h"

namespace stepwise::eval {

namespace {

// Alternatives in the pattern's order: (答案|正确选项) then (?:是|：|为|应该是|应该为).
constexpr std::array<std::string_view, 2> kKeywords = {"答案", "正确选项"};
constexpr std::array<std::string_view, 5> kConnectors = {"是", "：", "为", "应该是", "应该为"};
constexpr std::array<std::string_view, 2> kTerminators = {"。", "."};

bool starts_with_at(std::string_view text, size_t pos, std::string_view what) {
  return text.size() - pos >= what.size() && text.compare(pos, what.size(), what) == 0;
}

// The text captured by (.*?) in the leftmost match, or nullopt when the pattern does not occur. Because the capture
// is lazy and `$` always ends it, the first connector that follows a keyword decides the match; scanning start
// positions left to right gives re.search's leftmost match. All literals are whole UTF-8 sequences, and UTF-8 is
// self-synchronising, so byte-wise comparison never matches across a character boundary.
std::optional<std::string_view> pattern_capture(std::string_view text) {
  for (size_t start = 0; start < text.size(); ++start) {
    for (std::string_view keyword : kKeywords) {
      if (!starts_with_at(text, start, keyword)) continue;
      const size_t after_keyword = start + keyword.size();
      for (std::string_view connector : kConnectors) {
        if (!starts_with_at(text, after_keyword, connector)) continue;
        const size_t begin = after_keyword + connector.size();
        size_t end = text.size();
        for (std::string_view terminator : kTerminators) end = std::min(end, text.find(terminator, begin));
        return text.substr(begin, end - begin);
      }
    }
  }
  return std::nullopt;
}

// Option letters in `text`, in order of appearance (ASCII, full-width folded), restricted to `valid_letters`.
std::string letters_in(std::string_view text, std::string_view valid_letters) {
  std::string letters;
  for (char32_t c : utf8_decode(text)) {
    const bool full_width_letter = c >= 0xFF21 && c <= 0xFF25;  // Ａ..Ｅ
    const bool ascii_letter = c >= U'A' && c <= U'E';
    if (!full_width_letter && !ascii_letter) continue;
    const char letter = static_cast<char>(fold_full_width(c));
    if (valid_letters.find(letter) != std::string_view::npos) letters.push_back(letter);
  }
  return letters;
}

std::string choose(std::string letters, QuestionType type) {
  if (letters.empty()) return letters;
  if (type == QuestionType::single_choice) return letters.substr(0, 1);
  std::sort(letters.begin(), letters.end());
  letters.erase(std::unique(letters.begin(), letters.end()), letters.end());
  return letters;
}

}  // namespace

const char* extraction_source_name(ExtractionSource source) {
  switch (source) {
    case ExtractionSource::pattern: return "pattern";
    case ExtractionSource::fallback: return "fallback";
    case ExtractionSource::none: return "none";
  }
  return "none";
}

ExtractedAnswer extract_answer(std::string_view model_output, QuestionType type, std::string_view valid_letters) {
  if (const auto capture = pattern_capture(model_output)) {
    std::string letters = letters_in(*capture, valid_letters);
    if (!letters.empty()) return {choose(std::move(letters), type), ExtractionSource::pattern};
  }
  std::string letters = letters_in(model_output, valid_letters);
  if (!letters.empty()) return {choose(std::move(letters), type), ExtractionSource::fallback};
  return {"", ExtractionSource::none};
}

}  // namespace stepwise::eval
