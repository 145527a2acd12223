# tokenizer, chat template, token shards, loaders
target_sources(stepwise_data PRIVATE tokenizer.cpp chat_template.cpp token_shard.cpp loaders.cpp)
