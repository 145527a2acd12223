// Tests of the knowledge-base loader: the fixture loads with every field, and each kind of bad file (missing or empty
// field, unknown key, unknown formula or herb, duplicate id or name, department not in meta.yaml) gives an Error
// that names the file and the field or condition at fault.
#include <gtest/gtest.h>

#include "core/error.h"
#include "test_corpus_util.h"

using namespace stepwise;
using stepwise::test::copy_fixture;
using stepwise::test::fixture_kb;

namespace {

// Replaces the first occurrence of `from` in `file` by `to` (the fixture text must contain it).
void edit(const fs::path& file, const std::string& from, const std::string& to) {
  std::string text = read_file(file);
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  write_file_atomic(file, text);
}

// Loads `dir` and returns the Error message (fails the test when loading succeeds).
std::string load_error(const fs::path& dir) {
  try {
    load_knowledge_base(dir);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an Error loading " << dir;
  return "";
}

void expect_mentions(const std::string& message, const std::vector<std::string>& words) {
  for (const auto& w : words) EXPECT_NE(message.find(w), std::string::npos) << "'" << w << "' not in: " << message;
}

}  // namespace

TEST(KnowledgeBase, LoadsFixture) {
  const KnowledgeBase kb = load_knowledge_base(fixture_kb());
  EXPECT_EQ(kb.departments, (std::vector<std::string>{"内科", "儿科", "中医科"}));
  EXPECT_NE(kb.disclaimer.find("不构成医疗建议"), std::string::npos);
  ASSERT_EQ(kb.conditions.size(), 10u);
  EXPECT_EQ(kb.formulas.size(), 6u);
  EXPECT_EQ(kb.herbs.size(), 19u);
  // Files are read in name order: erke.yaml, neike.yaml, zhongyi.yaml.
  EXPECT_EQ(kb.conditions.front().id, "hand_foot_mouth");
  const KbCondition* htn = nullptr;
  for (const auto& c : kb.conditions)
    if (c.id == "hypertension") htn = &c;
  ASSERT_NE(htn, nullptr);
  EXPECT_EQ(htn->name, "高血压");
  EXPECT_EQ(htn->department, "内科");
  EXPECT_EQ(htn->sub_department, "心血管内科");
  EXPECT_EQ(htn->aliases, std::vector<std::string>{"原发性高血压"});
  EXPECT_EQ(htn->symptoms, (std::vector<std::string>{"头痛", "头晕", "心悸", "耳鸣"}));
  EXPECT_EQ(htn->drugs.size(), 3u);
  EXPECT_TRUE(htn->syndromes.empty());
  const KbCondition& vertigo = kb.conditions[7];
  EXPECT_EQ(vertigo.id, "tcm_vertigo");
  ASSERT_EQ(vertigo.syndromes.size(), 2u);
  EXPECT_EQ(vertigo.syndromes[0].formula, "天麻钩藤饮");
  EXPECT_EQ(vertigo.syndromes[0].tongue_pulse, "舌红苔黄，脉弦数");
  ASSERT_NE(kb.find_formula("归脾汤"), nullptr);
  EXPECT_EQ(kb.find_formula("归脾汤")->source, "《正体类要》");
  ASSERT_NE(kb.find_herb("天麻"), nullptr);
  EXPECT_EQ(kb.find_herb("天麻")->meridians, std::vector<std::string>{"肝经"});
  EXPECT_EQ(kb.find_herb("不存在"), nullptr);
}

TEST(KnowledgeBase, MissingFieldNamesFileConditionAndField) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "neike.yaml", "    summary: 由多种病因引起的胃黏膜慢性炎症性病变。\n", "");
  expect_mentions(load_error(dir), {"neike.yaml", "gastritis_chronic", "'summary'", "missing"});
}

TEST(KnowledgeBase, EmptyFieldIsAnError) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "erke.yaml", "    symptoms: [多汗, 夜惊, 枕秃, 方颅, 鸡胸]", "    symptoms: []");
  expect_mentions(load_error(dir), {"erke.yaml", "rickets", "'symptoms'", "empty"});
  const fs::path dir2 = copy_fixture("kb2");
  edit(dir2 / "erke.yaml", "    name: 毛细支气管炎", "    name: \"\"");
  expect_mentions(load_error(dir2), {"erke.yaml", "bronchiolitis", "'name'", "empty"});
}

TEST(KnowledgeBase, ListSizeOutsideSchemaRange) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "neike.yaml", "    red_flags: [呕血或排黑便]", "    red_flags: [a, b, c, d]");
  expect_mentions(load_error(dir), {"neike.yaml", "gastritis_chronic", "'red_flags'", "1-3"});
}

TEST(KnowledgeBase, UnknownKeyIsAnError) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "neike.yaml", "    causes: [遗传因素, 高盐饮食", "    cause: [遗传因素, 高盐饮食");
  const std::string message = load_error(dir);
  expect_mentions(message, {"neike.yaml", "hypertension"});
  EXPECT_TRUE(message.find("'cause'") != std::string::npos || message.find("'causes'") != std::string::npos) << message;
}

TEST(KnowledgeBase, SyndromeWithUnknownFormula) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "zhongyi.yaml", "        formula: 桑菊饮", "        formula: 不存在汤");
  expect_mentions(load_error(dir), {"zhongyi.yaml", "tcm_cough", "风热犯肺证", "'formula'", "不存在汤"});
}

TEST(KnowledgeBase, FormulaWithUnknownHerb) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "zhongyi.yaml", "    herbs: [麻黄, 苦杏仁, 甘草]", "    herbs: [麻黄, 苦杏仁, 生姜]");
  expect_mentions(load_error(dir), {"三拗汤", "'herbs'", "生姜"});
}

TEST(KnowledgeBase, DuplicateIdAcrossFiles) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "neike.yaml", "  - id: asthma", "  - id: rickets");
  expect_mentions(load_error(dir), {"neike.yaml", "rickets", "'id'", "erke.yaml"});
}

TEST(KnowledgeBase, DuplicateName) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "zhongyi.yaml", "    name: 咳嗽病", "    name: 高血压");
  expect_mentions(load_error(dir), {"zhongyi.yaml", "tcm_cough", "'name'", "高血压", "hypertension"});
}

TEST(KnowledgeBase, DepartmentNotInMeta) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "erke.yaml", "department: 儿科", "department: 小儿科");
  expect_mentions(load_error(dir), {"erke.yaml", "'department'", "小儿科", "meta.yaml"});
}

TEST(KnowledgeBase, TcmConditionNeedsSyndromes) {
  const fs::path dir = copy_fixture("kb");
  std::string text = read_file(dir / "zhongyi.yaml");
  const size_t from = text.find("    syndromes:\n      - name: 风寒袭肺证");
  const size_t to = text.find("formulas:");
  ASSERT_NE(from, std::string::npos);
  text.erase(from, to - from);
  write_file_atomic(dir / "zhongyi.yaml", text);
  expect_mentions(load_error(dir), {"zhongyi.yaml", "tcm_cough", "'syndromes'", "missing"});
}

TEST(KnowledgeBase, InvalidYamlNamesFileAndLine) {
  const fs::path dir = copy_fixture("kb");
  edit(dir / "erke.yaml", "手足皮疹, 流涎拒食]", "手足皮疹, 流涎拒食");
  expect_mentions(load_error(dir), {"erke.yaml:", "invalid YAML"});
}

TEST(KnowledgeBase, MissingMeta) {
  const fs::path dir = copy_fixture("kb");
  fs::remove(dir / "meta.yaml");
  expect_mentions(load_error(dir), {"meta.yaml", "missing"});
}
