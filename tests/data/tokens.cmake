# tests of the tokenizer, chat template, token shards and loaders
stepwise_test(test_tokens LABELS main
  SOURCES test_tokenizer.cpp test_chat_template.cpp test_token_shard.cpp test_loaders.cpp test_corpus_stats_tokens.cpp
  LIBS stepwise_data)
