# tests of this part: knowledge base loading / validation, corpus generation, held-out eval sets, statistics, CLI.
stepwise_test(test_corpus LABELS main
  SOURCES test_corpus_kb.cpp test_corpus_generate.cpp test_corpus_eval.cpp test_corpus_stats.cpp
          test_corpus_cli.cpp
  LIBS stepwise_data)
