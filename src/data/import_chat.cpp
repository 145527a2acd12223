// Importers of dialogue formats: ChiMed/39ask (sft + preference from adopted vs. not adopted answers), ShareGPT
// (sft, or preference when "chosen"/"rejected" are present), Alpaca (multi-turn sft) and legacy preference pairs.
// Each converter validates one record and returns canonical records; it throws BadRecord naming the faulty field.
#include <cstddef>

#include "core/error.h"
#include "data/import_record.h"

namespace stepwise::import_detail {

static json turn(std::string_view role, std::string content) {
  return json{{"role", role}, {"content", std::move(content)}};
}

// ---------------------------------------------------------------------------------------------- ChiMed / 39ask

static std::string chimed_department(const json& record, DepartmentLevel level) {
  const std::string raw = optional_string(record, "department");
  std::string path;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('>', start);
    if (end == std::string::npos) end = raw.size();
    std::string part = trim_text(std::string_view(raw).substr(start, end - start));
    if (!part.empty()) {
      if (level == DepartmentLevel::top) return part;
      path += path.empty() ? part : ">" + part;
    }
    start = end + 1;
  }
  return path;
}

// The asker's turn: title (when question_content does not already start with it), patient facts, the question.
static std::string chimed_user_turn(const json& record) {
  const std::string question = require_string(record, "question_content");
  const std::string title = optional_string(record, "title");
  std::string infos;
  if (auto it = record.find("patient_infos"); it != record.end() && !it->is_null()) {
    if (!it->is_array()) wrong_type("patient_infos", "array of strings", *it);
    for (size_t i = 0; i < it->size(); ++i) {
      const json& info = (*it)[i];
      if (!info.is_string()) wrong_type(cat("patient_infos[", i, "]"), "string", info);
      const std::string text = trim_text(info.get_ref<const std::string&>());
      if (text.empty()) continue;
      infos += infos.empty() ? text : "，" + text;
    }
  }
  std::string user;
  if (!title.empty() && question.compare(0, title.size(), title) != 0) user = title + "\n";
  if (!infos.empty()) user += "患者信息：" + infos + "\n";
  return user + question;
}

static bool chimed_adopted(const json& answer, const std::string& shown) {
  const json& v = require_field(answer, "adopted", shown);
  if (v.is_boolean()) return v.get<bool>();
  if (!v.is_string()) wrong_type(shown, "\"True\" or \"False\"", v);
  const std::string& s = v.get_ref<const std::string&>();
  if (s == "True" || s == "true") return true;
  if (s == "False" || s == "false") return false;
  bad_record(cat("field '", shown, "' is neither \"True\" nor \"False\""), cat("'", s, "'"));
}

Converted convert_chimed1(const json& record, const RecordContext& ctx) {
  require_object_record(record);
  const std::string id = record_id(record, ctx);
  const std::string user = chimed_user_turn(record);
  const std::string department = chimed_department(record, ctx.options.department_level);
  const json& answers = require_array(record, "answers", "answers", /*allow_empty=*/false);

  std::vector<std::string> adopted, not_adopted;
  for (size_t i = 0; i < answers.size(); ++i) {
    const std::string shown = cat("answers[", i, "]");
    const json& a = answers[i];
    if (!a.is_object()) wrong_type(shown, "object", a);
    std::string text = require_string(a, "answer", shown + ".answer");
    (chimed_adopted(a, shown + ".adopted") ? adopted : not_adopted).push_back(std::move(text));
  }

  Converted out;
  if (adopted.empty()) return out;  // nothing to learn from: counted by the driver as a record without output
  const std::string& chosen = adopted.front();
  out.main.push_back(json{{"id", id},
                          {"conversations", json::array({turn("user", user), turn("assistant", chosen)})},
                          {"department", department}});
  int pair = 0;
  for (const std::string& rejected : not_adopted) {
    if (rejected == chosen) continue;
    out.preference.push_back(json{{"id", cat(id, "-pair", ++pair)},
                                  {"conversations", json::array({turn("user", user)})},
                                  {"chosen", chosen},
                                  {"rejected", rejected},
                                  {"reason", "39ask：提问者采纳了 chosen 回答，未采纳 rejected 回答"}});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- ShareGPT

static std::string sharegpt_role(const std::string& from, const std::string& shown) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant") return "assistant";
  if (from == "system") return "system";
  bad_record(cat("field '", shown, "' is not human, gpt or system"), cat("'", from, "'"));
}

// Converts and checks the order: an optional system turn first, then user and assistant turns alternating.
static json sharegpt_turns(const json& record) {
  const json& conv = require_array(record, "conversations", "conversations", /*allow_empty=*/false);
  json turns = json::array();
  for (size_t i = 0; i < conv.size(); ++i) {
    const std::string shown = cat("conversations[", i, "]");
    if (!conv[i].is_object()) wrong_type(shown, "object", conv[i]);
    const std::string role = sharegpt_role(require_string(conv[i], "from", shown + ".from"), shown + ".from");
    std::string content = require_string(conv[i], "value", shown + ".value");
    const bool first = turns.empty();
    const std::string previous = first ? "" : turns.back()["role"].get<std::string>();
    const std::string expected = (first || previous == "system" || previous == "assistant") ? "user" : "assistant";
    if (!(role == expected || (role == "system" && first)))
      bad_record("field 'conversations' breaks the turn order (system?, then human/gpt alternating)",
                 cat("turn ", i, " is '", conv[i]["from"].get<std::string>(), "'"));
    turns.push_back(turn(role, std::move(content)));
  }
  return turns;
}

// "chosen"/"rejected" are either strings or ShareGPT turns {"from": "gpt", "value": ...}.
static std::string sharegpt_response(const json& record, const std::string& name) {
  const json& v = require_field(record, name, name);
  if (v.is_string()) return require_string(record, name);
  if (!v.is_object()) wrong_type(name, "string or {\"from\",\"value\"} object", v);
  if (v.contains("from") && require_string(v, "from", name + ".from") != "gpt")
    bad_record(cat("field '", name, ".from' is not gpt"));
  return require_string(v, "value", name + ".value");
}

Converted convert_sharegpt(const json& record, const RecordContext& ctx) {
  require_object_record(record);
  const std::string id = record_id(record, ctx);
  json turns = sharegpt_turns(record);
  const std::string last = turns.back()["role"].get<std::string>();
  Converted out;
  if (record.contains("chosen") || record.contains("rejected")) {
    std::string chosen = sharegpt_response(record, "chosen");
    std::string rejected = sharegpt_response(record, "rejected");
    if (last != "user") bad_record("field 'conversations' of a preference record does not end with a human turn");
    out.preference.push_back(json{{"id", id},
                                  {"conversations", std::move(turns)},
                                  {"chosen", std::move(chosen)},
                                  {"rejected", std::move(rejected)},
                                  {"reason", optional_string(record, "reason")}});
    return out;
  }
  if (last != "assistant") bad_record("field 'conversations' does not end with a gpt turn");
  out.main.push_back(
      json{{"id", id}, {"conversations", std::move(turns)}, {"department", optional_string(record, "department")}});
  return out;
}

// ---------------------------------------------------------------------------------------------- Alpaca

Converted convert_alpaca(const json& record, const RecordContext& ctx) {
  require_object_record(record);
  const std::string id = record_id(record, ctx);
  const std::string instruction = require_string(record, "instruction");
  const std::string input = optional_string(record, "input");
  std::string output = require_string(record, "output");
  const std::string system = optional_string(record, "system");

  json turns = json::array();
  if (!system.empty()) turns.push_back(turn("system", system));
  if (auto it = record.find("history"); it != record.end() && !it->is_null()) {
    if (!it->is_array()) wrong_type("history", "array of [question, answer] pairs", *it);
    for (size_t i = 0; i < it->size(); ++i) {
      const json& pair = (*it)[i];
      const std::string shown = cat("history[", i, "]");
      if (!pair.is_array() || pair.size() != 2) wrong_type(shown, "[question, answer] pair", pair);
      for (size_t k = 0; k < 2; ++k) {
        const std::string part = cat(shown, "[", k, "]");
        if (!pair[k].is_string()) wrong_type(part, "string", pair[k]);
        std::string text = trim_text(pair[k].get_ref<const std::string&>());
        if (text.empty()) bad_record(cat("field '", part, "' is empty"));
        turns.push_back(turn(k == 0 ? "user" : "assistant", std::move(text)));
      }
    }
  }
  turns.push_back(turn("user", input.empty() ? instruction : instruction + "\n" + input));
  turns.push_back(turn("assistant", std::move(output)));

  Converted out;
  out.main.push_back(
      json{{"id", id}, {"conversations", std::move(turns)}, {"department", optional_string(record, "department")}});
  return out;
}

// ---------------------------------------------------------------------------------------------- legacy preference

Converted convert_preference_legacy(const json& record, const RecordContext& ctx) {
  require_object_record(record);
  const std::string id = record_id(record, ctx);
  std::string question = require_string(record, "question");
  std::string chosen = require_string(record, "response_chosen");
  std::string rejected = require_string(record, "response_rejected");
  Converted out;
  out.main.push_back(json{{"id", id},
                          {"conversations", json::array({turn("user", std::move(question))})},
                          {"chosen", std::move(chosen)},
                          {"rejected", std::move(rejected)},
                          {"reason", optional_string(record, "reason")}});
  return out;
}

}  // namespace stepwise::import_detail
