// Extraction of the chosen option letters from a model's free-text answer, by CMB's rule: find the first
// `(答案|正确选项)(?:是|：|为|应该是|应该为)(.*?)(。|\.|$)` and keep the option letters in the captured text; if there is
// no match (or it holds no letter), take the option letters anywhere in the text. Never guesses.
#pragma once
#include <string>
#include <string_view>

#include "eval/benchmark.h"

namespace stepwise::eval {

enum class ExtractionSource {
  pattern,   // letters came from the text captured after "答案是" / "正确选项为" / ...
  fallback,  // no usable pattern match; letters came from the whole text
  none,      // no option letter anywhere: the answer counts as wrong and as "no extractable letter"
};

const char* extraction_source_name(ExtractionSource source);

struct ExtractedAnswer {
  std::string letters;  // single choice: the first letter found ("" if none); multi: sorted unique ("ABD")
  ExtractionSource source = ExtractionSource::none;
};

// Letters are 'A'..'E' or full-width 'Ａ'..'Ｅ' (reported as ASCII) that belong to `valid_letters` (the item's
// options, e.g. "ABCD"); lower-case letters are not option letters (CMB's rule). The search over the text is
// Python re.search semantics of the pattern above (re.S: the capture may span lines), done by hand on UTF-8 bytes.
ExtractedAnswer extract_answer(std::string_view model_output, QuestionType type,
                               std::string_view valid_letters = "ABCDE");

}  // namespace stepwise::eval
