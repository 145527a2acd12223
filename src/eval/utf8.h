// UTF-8 helpers for scoring: decode text into code points (never throwing on bad bytes, since model output may be
// cut mid-character), encode code points back, and fold full-width ASCII forms (Ａ, ：, １) to their ASCII twins.
#pragma once
#include <string>
#include <string_view>

namespace stepwise::eval {

// Decodes UTF-8 into code points. Each byte that does not start a valid sequence (stray continuation,
// overlong form, surrogate, truncation) becomes one U+FFFD and decoding resumes at the next byte.
std::u32string utf8_decode(std::string_view text);

// Encodes code points as UTF-8 (code points above U+10FFFF or surrogates become U+FFFD).
std::string utf8_encode(std::u32string_view code_points);

// Number of code points in `text` (as utf8_decode counts them).
size_t utf8_length(std::string_view text);

// Maps the full-width forms U+FF01..U+FF5E to ASCII U+0021..U+007E and U+3000 (ideographic space) to ' '.
char32_t fold_full_width(char32_t c);

}  // namespace stepwise::eval
