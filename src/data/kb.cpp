// Loading and validation of the knowledge base (see kb.h and data/medical-zh/kb/SCHEMA.md).
// Every error names the file, the line, the condition (when inside one) and the field at fault.
#include "data/kb.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "core/error.h"

namespace stepwise {
namespace {

struct ListRange {
  size_t min, max;
};

// Where in the KB a node sits, for error messages: "FILE:LINE: condition 'id': field 'symptoms'".
struct Where {
  std::string file;
  std::string owner;  // "condition 'hypertension'", "formula '归脾汤'", ... or empty at file level

  std::string at(const YAML::Node& node, const std::string& field) const {
    std::string s = file;
    if (node.IsDefined() && node.Mark().line >= 0) s += cat(":", node.Mark().line + 1);
    s += ": ";
    if (!owner.empty()) s += owner + ": ";
    return s + "field '" + field + "'";
  }
};

void check_keys(const YAML::Node& map, const std::set<std::string>& allowed, const Where& where) {
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (!allowed.count(key)) fail(where.at(kv.first, key), " is not a known key (see SCHEMA.md)");
  }
}

std::string read_text(const YAML::Node& map, const std::string& field, const Where& where, bool required = true) {
  const YAML::Node node = map[field];
  if (!node.IsDefined() || node.IsNull()) {
    if (required) fail(where.at(map, field), " is missing");
    return "";
  }
  if (!node.IsScalar()) fail(where.at(node, field), " must be a text value");
  std::string value = node.as<std::string>();
  if (value.find_first_not_of(" \t\r\n") == std::string::npos) fail(where.at(node, field), " is empty");
  return value;
}

// A list of non-empty, distinct texts; `range` from SCHEMA.md. An absent optional list reads as empty.
std::vector<std::string> read_list(const YAML::Node& map, const std::string& field, ListRange range,
                                   const Where& where, bool required = true) {
  const YAML::Node node = map[field];
  if (!node.IsDefined() || node.IsNull()) {
    if (required) fail(where.at(map, field), " is missing");
    return {};
  }
  if (!node.IsSequence()) fail(where.at(node, field), " must be a list");
  std::vector<std::string> items;
  for (const auto& item : node) {
    if (!item.IsScalar()) fail(where.at(item, field), " has an item that is not text");
    std::string value = item.as<std::string>();
    if (value.find_first_not_of(" \t\r\n") == std::string::npos) fail(where.at(item, field), " has an empty item");
    if (std::find(items.begin(), items.end(), value) != items.end())
      fail(where.at(item, field), " lists '", value, "' twice");
    items.push_back(value);
  }
  if (items.empty() && range.min > 0) fail(where.at(node, field), " is empty");
  if (items.size() < range.min || items.size() > range.max)
    fail(where.at(node, field), " has ", items.size(), " items; SCHEMA.md allows ", range.min, "-", range.max);
  return items;
}

YAML::Node parse_yaml(const fs::path& path) {
  try {
    return YAML::Load(read_file(path));
  } catch (const YAML::Exception& e) {
    fail(path.string(), ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
  }
}

KbSyndrome read_syndrome(const YAML::Node& node, const Where& condition_where) {
  if (!node.IsMap()) fail(condition_where.at(node, "syndromes"), " must list maps");
  Where where{condition_where.file, condition_where.owner};
  KbSyndrome s;
  s.name = read_text(node, "name", where);
  where.owner += cat(": syndrome '", s.name, "'");
  check_keys(node, {"name", "symptoms", "tongue_pulse", "therapy", "formula"}, where);
  s.symptoms = read_list(node, "symptoms", {1, 8}, where);
  s.tongue_pulse = read_text(node, "tongue_pulse", where);
  s.therapy = read_text(node, "therapy", where);
  s.formula = read_text(node, "formula", where);
  return s;
}

KbCondition read_condition(const YAML::Node& node, const std::string& file, const std::string& department,
                           const std::vector<std::string>& sub_departments) {
  Where where{file, ""};
  if (!node.IsMap()) fail(where.at(node, "conditions"), " must list maps");
  KbCondition c;
  c.file = file;
  c.department = department;
  c.id = read_text(node, "id", where);
  where.owner = cat("condition '", c.id, "'");
  check_keys(node, {"id", "name", "aliases", "sub_department", "summary", "symptoms", "causes", "risk_groups",
                    "examinations", "treatments", "drugs", "complications", "prevention", "red_flags", "syndromes"},
             where);
  for (char ch : c.id)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-'))
      fail(where.at(node["id"], "id"), " must be an ASCII slug (letters, digits, '_', '-')");
  c.name = read_text(node, "name", where);
  c.aliases = read_list(node, "aliases", {0, 10}, where, false);
  c.sub_department = read_text(node, "sub_department", where, false);
  if (!c.sub_department.empty() &&
      std::find(sub_departments.begin(), sub_departments.end(), c.sub_department) == sub_departments.end())
    fail(where.at(node["sub_department"], "sub_department"), " '", c.sub_department,
         "' is not one of the file's sub_departments");
  c.summary = read_text(node, "summary", where);
  c.symptoms = read_list(node, "symptoms", {3, 8}, where);
  c.causes = read_list(node, "causes", {2, 6}, where);
  c.risk_groups = read_list(node, "risk_groups", {1, 4}, where);
  c.examinations = read_list(node, "examinations", {2, 6}, where);
  c.treatments = read_list(node, "treatments", {2, 5}, where);
  c.drugs = read_list(node, "drugs", {0, 5}, where, false);
  c.complications = read_list(node, "complications", {0, 5}, where, false);
  c.prevention = read_list(node, "prevention", {2, 6}, where);
  c.red_flags = read_list(node, "red_flags", {1, 3}, where);
  const YAML::Node syndromes = node["syndromes"];
  if (department == "中医科" && (!syndromes.IsDefined() || syndromes.IsNull()))
    fail(where.at(node, "syndromes"), " is missing (required for 中医科 conditions)");
  if (syndromes.IsDefined() && !syndromes.IsNull()) {
    if (!syndromes.IsSequence()) fail(where.at(syndromes, "syndromes"), " must be a list");
    for (const auto& s : syndromes) c.syndromes.push_back(read_syndrome(s, where));
    if (c.syndromes.size() < 2 || c.syndromes.size() > 4)
      fail(where.at(syndromes, "syndromes"), " has ", c.syndromes.size(), " items; SCHEMA.md allows 2-4");
    std::set<std::string> names;
    for (const auto& s : c.syndromes)
      if (!names.insert(s.name).second) fail(where.at(syndromes, "syndromes"), " lists '", s.name, "' twice");
  }
  return c;
}

KbFormula read_formula(const YAML::Node& node, const std::string& file) {
  Where where{file, ""};
  if (!node.IsMap()) fail(where.at(node, "formulas"), " must list maps");
  KbFormula f;
  f.name = read_text(node, "name", where);
  where.owner = cat("formula '", f.name, "'");
  check_keys(node, {"name", "source", "herbs", "effect"}, where);
  f.source = read_text(node, "source", where);
  f.herbs = read_list(node, "herbs", {1, 30}, where);
  f.effect = read_text(node, "effect", where);
  return f;
}

KbHerb read_herb(const YAML::Node& node, const std::string& file) {
  Where where{file, ""};
  if (!node.IsMap()) fail(where.at(node, "herbs"), " must list maps");
  KbHerb h;
  h.name = read_text(node, "name", where);
  where.owner = cat("herb '", h.name, "'");
  check_keys(node, {"name", "nature", "meridians", "effects"}, where);
  h.nature = read_text(node, "nature", where);
  h.meridians = read_list(node, "meridians", {1, 12}, where);
  h.effects = read_text(node, "effects", where);
  return h;
}

void read_department_file(const fs::path& path, KnowledgeBase& kb, std::vector<std::string>& seen_departments) {
  const std::string file = path.string();
  const YAML::Node root = parse_yaml(path);
  Where where{file, ""};
  if (!root.IsMap()) fail(file, ": a department file must be a map (see SCHEMA.md)");
  check_keys(root, {"department", "sub_departments", "conditions", "formulas", "herbs"}, where);
  const std::string department = read_text(root, "department", where);
  if (std::find(kb.departments.begin(), kb.departments.end(), department) == kb.departments.end())
    fail(where.at(root["department"], "department"), " '", department, "' is not listed in meta.yaml departments");
  if (std::find(seen_departments.begin(), seen_departments.end(), department) != seen_departments.end())
    fail(where.at(root["department"], "department"), " '", department, "' has a second file");
  seen_departments.push_back(department);
  const auto sub_departments = read_list(root, "sub_departments", {0, 30}, where, false);
  const YAML::Node conditions = root["conditions"];
  if (!conditions.IsDefined() || conditions.IsNull()) fail(where.at(root, "conditions"), " is missing");
  if (!conditions.IsSequence() || conditions.size() == 0)
    fail(where.at(conditions, "conditions"), " must be a non-empty list");
  for (const auto& node : conditions) kb.conditions.push_back(read_condition(node, file, department, sub_departments));
  for (const char* key : {"formulas", "herbs"}) {
    const YAML::Node list = root[key];
    if (!list.IsDefined() || list.IsNull()) continue;
    if (!list.IsSequence()) fail(where.at(list, key), " must be a list");
    for (const auto& node : list) {
      if (std::string(key) == "formulas")
        kb.formulas.push_back(read_formula(node, file));
      else
        kb.herbs.push_back(read_herb(node, file));
    }
  }
}

// Cross-file checks: unique ids and names, references between syndromes, formulas and herbs.
void check_references(const KnowledgeBase& kb) {
  std::map<std::string, const KbCondition*> ids, names;
  for (const auto& c : kb.conditions) {
    auto [it, fresh] = ids.emplace(c.id, &c);
    if (!fresh) fail(c.file, ": condition '", c.id, "': field 'id' duplicates the condition in ", it->second->file);
    auto [nit, nfresh] = names.emplace(c.name, &c);
    if (!nfresh)
      fail(c.file, ": condition '", c.id, "': field 'name' '", c.name, "' is also the name of condition '",
           nit->second->id, "' (", nit->second->file, ")");
  }
  std::set<std::string> formula_names, herb_names;
  for (const auto& h : kb.herbs)
    if (!herb_names.insert(h.name).second) fail("herb '", h.name, "': field 'name' is listed twice in the KB");
  for (const auto& f : kb.formulas) {
    if (!formula_names.insert(f.name).second) fail("formula '", f.name, "': field 'name' is listed twice in the KB");
    for (const auto& herb : f.herbs)
      if (!herb_names.count(herb)) fail("formula '", f.name, "': field 'herbs' names '", herb, "', which is not in herbs");
  }
  for (const auto& c : kb.conditions)
    for (const auto& s : c.syndromes)
      if (!formula_names.count(s.formula))
        fail(c.file, ": condition '", c.id, "': syndrome '", s.name, "': field 'formula' names '", s.formula,
             "', which is not in formulas");
}

}  // namespace

const KbFormula* KnowledgeBase::find_formula(const std::string& name) const {
  for (const auto& f : formulas)
    if (f.name == name) return &f;
  return nullptr;
}

const KbHerb* KnowledgeBase::find_herb(const std::string& name) const {
  for (const auto& h : herbs)
    if (h.name == name) return &h;
  return nullptr;
}

KnowledgeBase load_knowledge_base(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": knowledge base directory not found");
  const fs::path meta_path = dir / "meta.yaml";
  if (!fs::exists(meta_path)) fail(meta_path.string(), ": missing (the KB needs meta.yaml)");
  KnowledgeBase kb;
  const YAML::Node meta = parse_yaml(meta_path);
  const Where meta_where{meta_path.string(), ""};
  if (!meta.IsMap()) fail(meta_path.string(), ": must be a map with 'disclaimer' and 'departments'");
  check_keys(meta, {"disclaimer", "departments"}, meta_where);
  kb.disclaimer = read_text(meta, "disclaimer", meta_where);
  kb.departments = read_list(meta, "departments", {1, 100}, meta_where);

  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".yaml" && entry.path().filename() != "meta.yaml")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());  // directory order is unspecified; the corpus must not depend on it
  if (files.empty()) fail(dir.string(), ": no department files (*.yaml besides meta.yaml)");
  std::vector<std::string> seen_departments;
  for (const auto& path : files) read_department_file(path, kb, seen_departments);
  for (const auto& d : kb.departments)
    if (std::find(seen_departments.begin(), seen_departments.end(), d) == seen_departments.end())
      fail(meta_path.string(), ": field 'departments' lists '", d, "', which has no department file");
  check_references(kb);
  return kb;
}

std::vector<std::string> condition_facts(const KbCondition& c) {
  std::vector<std::string> facts = {c.name, c.summary};
  for (const auto* list : {&c.aliases, &c.symptoms, &c.causes, &c.risk_groups, &c.examinations, &c.treatments, &c.drugs,
                           &c.complications, &c.prevention, &c.red_flags})
    facts.insert(facts.end(), list->begin(), list->end());
  for (const auto& s : c.syndromes) {
    facts.insert(facts.end(), {s.name, s.tongue_pulse, s.therapy, s.formula});
    facts.insert(facts.end(), s.symptoms.begin(), s.symptoms.end());
  }
  return facts;
}

}  // namespace stepwise
