// Tests of eval reports: the files written to an output directory, report.json read back with validation,
// well-formed SVG (a small tag-balance check), Markdown tables, and the side-by-side comparison of several models.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "eval/report.h"
#include "eval/report_svg.h"
#include "eval_fixtures.h"

using namespace stepwise;
using namespace stepwise::eval;
using stepwise::eval::testing::cmb_item;
using stepwise::eval::testing::TempPath;

namespace {

// True when every tag in `xml` is closed in order and every '&' starts an entity; `error` says what is wrong.
bool xml_well_formed(const std::string& xml, std::string& error) {
  std::vector<std::string> open;
  for (size_t i = 0; i < xml.size(); ++i) {
    if (xml[i] == '&') {
      const size_t semi = xml.find(';', i);
      const std::string entity = xml.substr(i, semi == std::string::npos ? 8 : semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" && entity != "&apos;") {
        error = "bad entity " + entity;
        return false;
      }
    }
    if (xml[i] != '<') continue;
    const size_t close = xml.find('>', i);
    if (close == std::string::npos) {
      error = "unterminated tag";
      return false;
    }
    const std::string tag = xml.substr(i + 1, close - i - 1);
    i = close;
    if (tag.empty()) {
      error = "empty tag";
      return false;
    }
    if (tag.back() == '/') continue;  // self-closing
    if (tag.front() == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) {
        error = "closing </" + name + "> does not match <" + (open.empty() ? "" : open.back()) + ">";
        return false;
      }
      open.pop_back();
    } else {
      open.push_back(tag.substr(0, tag.find(' ')));
    }
  }
  if (!open.empty()) error = "unclosed <" + open.back() + ">";
  return open.empty();
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

EvalReport sample_report(const std::string& model, const std::string& reply_for_item_2) {
  EvalReport report;
  report.model = model;
  report.benchmark = "eval_mcq.jsonl + eval_qa.jsonl";
  report.meta = {{"temperature", 0.0}};
  const std::vector<McqItem> items = {cmb_item("1", "内科", "A"), cmb_item("2", "外科", "B"),
                                      cmb_item("3", "外科", "CD", "多项选择题")};
  report.mcq_records = {score_mcq_generation(items[0], "答案：A"), score_mcq_generation(items[1], reply_for_item_2),
                        score_mcq_generation(items[2], "正确选项为C、D。")};
  report.mcq_generation = summarize_mcq(report.mcq_records);
  std::vector<McqRecord> likelihood = {
      score_mcq_likelihood(items[0], {{-1, 1}, {-2, 1}, {-3, 1}, {-4, 1}, {-5, 1}}),
      score_mcq_likelihood(items[1], {{-1, 1}, {-2, 1}, {-3, 1}, {-4, 1}, {-5, 1}})};
  report.mcq_likelihood = summarize_mcq(likelihood);
  report.qa_records = {score_qa({"a1", "发热咳嗽怎么办？", "患者咳嗽发热三天", 1}, "患者发热咳嗽")};
  report.qa = summarize_qa(report.qa_records);
  return report;
}

}  // namespace

TEST(Report, WritesParseableFiles) {
  TempPath dir("report");
  const EvalReport report = sample_report("sft <v1> & co", "不清楚");
  write_report(dir.path(), report);

  const EvalReport back = read_report(dir.path());
  EXPECT_EQ(back.model, report.model);
  EXPECT_EQ(back.meta, report.meta);
  ASSERT_TRUE(back.mcq_generation && back.mcq_likelihood && back.qa);
  EXPECT_EQ(back.mcq_generation->overall.total, 3);
  EXPECT_EQ(back.mcq_generation->overall.correct, 2);
  EXPECT_EQ(back.mcq_generation->overall.no_answer, 1);
  EXPECT_EQ(back.mcq_generation->by_subject.at("外科").correct, 1);
  EXPECT_EQ(back.mcq_generation->by_source, report.mcq_generation->by_source);
  EXPECT_EQ(back.mcq_likelihood->overall.correct, 1);
  EXPECT_EQ(back.qa->corpus_bleu, report.qa->corpus_bleu);
  EXPECT_DOUBLE_EQ(back.qa->mean_rouge_l, 4.0 / 7.0);
  EXPECT_TRUE(back.mcq_records.empty());  // per-item results live in items.jsonl

  const std::vector<json> items = jsonl_read(dir.path() / "items.jsonl");
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[1]["predicted"], "");
  EXPECT_EQ(items[1]["source"], "none");
  EXPECT_EQ(items[3]["kind"], "qa");

  const std::string md = read_file(dir.path() / "report.md");
  EXPECT_NE(md.find("| all | 3 | 2 | 66.67 | 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 外科 | 2 | 1 | 50.00 | 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("Answers with no extractable letter: 1 of 3"), std::string::npos) << md;
  EXPECT_NE(md.find("| mean ROUGE-L F1 | 57.14 |"), std::string::npos) << md;

  const std::string svg = read_file(dir.path() / "report.svg");
  std::string error;
  EXPECT_TRUE(xml_well_formed(svg, error)) << error;
  EXPECT_NE(svg.find("sft &lt;v1&gt; &amp; co"), std::string::npos);
  EXPECT_NE(svg.find("MCQ 外科"), std::string::npos);
  for (const auto& entry : fs::directory_iterator(dir.path()))  // no temporary file left behind
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << entry.path();
}

TEST(Report, ReaderRejectsBadDocuments) {
  TempPath dir("bad_report");
  fs::create_directories(dir.path());
  json document = report_to_json(sample_report("base", "答案：B"));
  const auto expect_error = [&](const json& doc, const std::string& part) {
    write_file_atomic(dir.path() / "report.json", doc.dump());
    try {
      read_report(dir.path());
      ADD_FAILURE() << "no error; expected " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("report.json: " + part), std::string::npos) << e.what();
    }
  };
  json wrong_version = document;
  wrong_version["version"] = 99;
  expect_error(wrong_version, "report version 99 is not supported");
  json missing = document;
  missing["mcq"]["generation"]["overall"].erase("total");
  expect_error(missing, "missing field 'mcq.generation.overall.total'");
  json inconsistent = document;
  inconsistent["mcq"]["generation"]["by_subject"]["内科"]["correct"] = 7;
  expect_error(inconsistent, "field 'mcq.generation.by_subject.内科' has correct or no_answer greater than total");
  json short_bleu = document;
  short_bleu["qa"]["corpus_bleu"] = {0.5};
  expect_error(short_bleu, "field 'qa.corpus_bleu' must be an array of 4 numbers");
  write_file_atomic(dir.path() / "report.json", "{\"format\":");
  EXPECT_THROW(read_report(dir.path()), Error);
}

TEST(Report, ComparesModelsSideBySide) {
  TempPath dir("compare");
  EvalReport base = sample_report("base", "不清楚");
  base.mcq_generation->by_subject.erase("内科");  // a subject only some models have shows n/a
  EvalReport sft = sample_report("sft", "答案：B");
  EvalReport dpo = sample_report("dpo", "答案：B");
  dpo.qa.reset();  // a model without QA results: its QA cells are n/a
  write_comparison(dir.path(), {base, sft, dpo});

  const std::string md = read_file(dir.path() / "report.md");
  EXPECT_NE(md.find("| metric | base | sft | dpo |"), std::string::npos) << md;
  EXPECT_NE(md.find("| MCQ accuracy (generation) | 66.67 | 100.00 | 100.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| MCQ no-letter answers (generation) | 1 | 0 | 0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 内科 | n/a | 100.00 | 100.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| QA ROUGE-L | 57.14 | 57.14 | n/a |"), std::string::npos) << md;

  const std::string svg = read_file(dir.path() / "report.svg");
  std::string error;
  EXPECT_TRUE(xml_well_formed(svg, error)) << error;
  // 7 metrics x 3 models, one missing model for the 5 QA metrics: 21 - 5 bars, each with a <title>.
  EXPECT_EQ(count_of(svg, "<title>"), 16u);
  EXPECT_EQ(count_of(svg, ">n/a<"), 5u);

  EXPECT_THROW(write_comparison(dir.path(), {base, base}), Error);
  EXPECT_THROW(write_comparison(dir.path(), {}), Error);
}

TEST(BarChart, RejectsMismatchedSeries) {
  BarChart chart{"t", "%", {"a", "b"}, {{"m", {1.0}}}};
  EXPECT_THROW(render_bar_chart(chart), Error);
}
