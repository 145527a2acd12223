# sources of this part of stepwise_data: knowledge base, corpus generator (one file per split), corpus statistics.
target_sources(stepwise_data PRIVATE
  kb.cpp
  corpus_text.cpp
  corpus_facts.cpp
  corpus_pretrain.cpp
  corpus_sft.cpp
  corpus_exam.cpp
  corpus_preference.cpp
  corpus_eval.cpp
  corpus_generate.cpp
  corpus_stats.cpp)
