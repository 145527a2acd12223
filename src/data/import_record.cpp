// Field accessors, text helpers and multiple-choice validation shared by every importer (see import_record.h).
// Every failure is a BadRecord whose reason names the field; nothing here knows about files or lines.
#include "data/import_record.h"

#include <algorithm>

#include "core/error.h"

namespace stepwise::import_detail {

void bad_record(std::string reason, std::string detail) { throw BadRecord{std::move(reason), std::move(detail)}; }

static bool starts_with_space(std::string_view s, size_t& len) {
  if (s.empty()) return false;
  const unsigned char c = s[0];
  if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') return len = 1, true;
  if (s.substr(0, 2) == "\xC2\xA0") return len = 2, true;      // U+00A0 no-break space
  if (s.substr(0, 3) == "\xE3\x80\x80") return len = 3, true;  // U+3000 ideographic space
  return false;
}

static bool ends_with_space(std::string_view s, size_t& len) {
  if (s.empty()) return false;
  const unsigned char c = s.back();
  if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') return len = 1, true;
  if (s.size() >= 2 && s.substr(s.size() - 2) == "\xC2\xA0") return len = 2, true;
  if (s.size() >= 3 && s.substr(s.size() - 3) == "\xE3\x80\x80") return len = 3, true;
  return false;
}

std::string trim_text(std::string_view s) {
  size_t len = 0;
  while (starts_with_space(s, len)) s.remove_prefix(len);
  while (ends_with_space(s, len)) s.remove_suffix(len);
  return std::string(s);
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    int extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

void wrong_type(const std::string& shown, std::string_view expected, const json& got) {
  bad_record(cat("field '", shown, "' has the wrong type"), cat("expected ", expected, ", got ", got.type_name()));
}

void require_object_record(const json& record) {
  if (!record.is_object()) bad_record("record is not a JSON object", cat("got ", record.type_name()));
}

const json& require_field(const json& obj, const std::string& name, const std::string& shown) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) bad_record(cat("field '", shown, "' is missing"));
  return *it;
}

std::string require_string(const json& obj, const std::string& name, const std::string& shown) {
  const json& v = require_field(obj, name, shown);
  if (!v.is_string()) wrong_type(shown, "string", v);
  std::string text = trim_text(v.get_ref<const std::string&>());
  if (text.empty()) bad_record(cat("field '", shown, "' is empty"));
  return text;
}

std::string require_string(const json& obj, const std::string& name) { return require_string(obj, name, name); }

std::string optional_string(const json& obj, const std::string& name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return "";
  if (!it->is_string()) wrong_type(name, "string", *it);
  return trim_text(it->get_ref<const std::string&>());
}

const json& require_array(const json& obj, const std::string& name, const std::string& shown, bool allow_empty) {
  const json& v = require_field(obj, name, shown);
  if (!v.is_array()) wrong_type(shown, "array", v);
  if (!allow_empty && v.empty()) bad_record(cat("field '", shown, "' is empty"));
  return v;
}

const json& require_object(const json& obj, const std::string& name, const std::string& shown) {
  const json& v = require_field(obj, name, shown);
  if (!v.is_object()) wrong_type(shown, "object", v);
  if (v.empty()) bad_record(cat("field '", shown, "' is empty"));
  return v;
}

std::string record_id(const json& record, const RecordContext& ctx) {
  auto it = record.find("id");
  if (it == record.end() || it->is_null()) return ctx.fallback_id;
  if (it->is_number_integer()) return it->dump();
  if (!it->is_string()) wrong_type("id", "string or integer", *it);
  std::string id = trim_text(it->get_ref<const std::string&>());
  if (id.empty()) bad_record("field 'id' is empty");
  return id;
}

static bool is_option_letter(std::string_view key) { return key.size() == 1 && key[0] >= 'A' && key[0] <= 'Z'; }

static std::string letters_of(const json& options) {
  std::string letters;
  for (auto it = options.begin(); it != options.end(); ++it) {
    if (!letters.empty()) letters += ", ";
    letters += it.key();
  }
  return letters;
}

json validate_options(const json& options, const std::string& shown) {
  if (!options.is_object()) wrong_type(shown, "object", options);
  if (options.size() < 2) bad_record(cat("field '", shown, "' has fewer than two options"));
  json clean = json::object();
  for (auto it = options.begin(); it != options.end(); ++it) {
    const std::string field = cat(shown, ".", it.key());
    if (!is_option_letter(it.key())) bad_record(cat("field '", shown, "' has a key that is not a letter A-Z"), it.key());
    if (!it->is_string()) wrong_type(field, "string", *it);
    std::string text = trim_text(it->get_ref<const std::string&>());
    if (text.empty()) bad_record(cat("field '", field, "' is empty"));
    clean[it.key()] = std::move(text);
  }
  return clean;
}

std::string validate_answer(const std::string& raw, const json& options, const std::string& shown) {
  std::string letters;
  for (char c : raw) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c < 'A' || c > 'Z') bad_record(cat("field '", shown, "' is not a string of option letters"), cat("'", raw, "'"));
    if (letters.find(c) != std::string::npos) bad_record(cat("field '", shown, "' repeats a letter"), cat("'", raw, "'"));
    if (!options.contains(std::string(1, c)))
      bad_record(cat("field '", shown, "' names a letter not among the options"),
                 cat("'", c, "' (options: ", letters_of(options), ")"));
    letters.push_back(c);
  }
  if (letters.empty()) bad_record(cat("field '", shown, "' is empty"));
  std::sort(letters.begin(), letters.end());
  return letters;
}

std::string question_type_for(const std::string& answer) { return answer.size() == 1 ? "单项选择题" : "多项选择题"; }

}  // namespace stepwise::import_detail
