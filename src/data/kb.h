// The medical knowledge base (data/medical-zh/kb, see SCHEMA.md there): typed records, loading and validation.
// The corpus generator reads facts only from here; bad KB files give stepwise::Error naming file, condition and field.
#pragma once
#include <string>
#include <vector>

#include "core/fs.h"

namespace stepwise {

struct KbSyndrome {                    // 中医 辨证分型 of one condition
  std::string name;                    // e.g. 肝阳上亢证
  std::vector<std::string> symptoms;
  std::string tongue_pulse;            // 舌脉
  std::string therapy;                 // 治法
  std::string formula;                 // name of a KbFormula
};

struct KbCondition {
  std::string id;                      // ASCII slug, unique across the KB
  std::string name;                    // unique across the KB
  std::vector<std::string> aliases;
  std::string department;              // the `department` of its file
  std::string sub_department;          // may be empty
  std::string summary;
  std::vector<std::string> symptoms, causes, risk_groups, examinations, treatments, drugs, complications, prevention,
      red_flags;
  std::vector<KbSyndrome> syndromes;   // 中医科 conditions only
  std::string file;                    // the file it came from (for messages)
};

struct KbFormula {
  std::string name, source, effect;
  std::vector<std::string> herbs;
};

struct KbHerb {
  std::string name, nature, effects;   // nature: 性味
  std::vector<std::string> meridians;  // 归经
};

struct KnowledgeBase {
  std::string disclaimer;              // meta.yaml: the corpus is synthetic, not medical advice
  std::vector<std::string> departments;
  std::vector<KbCondition> conditions; // in file-name order, then file order
  std::vector<KbFormula> formulas;
  std::vector<KbHerb> herbs;

  const KbFormula* find_formula(const std::string& name) const;  // nullptr when absent
  const KbHerb* find_herb(const std::string& name) const;
};

// Loads meta.yaml and every other *.yaml in `dir` (sorted by file name) and validates them: required fields present
// and non-empty, list sizes within SCHEMA.md's ranges, unknown keys, unique condition ids / names and formula / herb
// names, syndromes naming known formulas, formulas naming known herbs, departments listed in meta.yaml.
KnowledgeBase load_knowledge_base(const fs::path& dir);

// Every fact string of a condition (all list fields, summary, aliases, syndrome names / symptoms / tongue and pulse /
// therapies / formulas): what a distractor must never be.
std::vector<std::string> condition_facts(const KbCondition& condition);

}  // namespace stepwise
