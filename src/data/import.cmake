# Importers of real-world dataset formats into the canonical JSONL schemas (see import.h).
target_sources(stepwise_data PRIVATE
  import.cpp          # format table, driver (bad-record policy, id checks), atomic streaming outputs
  import_record.cpp   # BadRecord, field accessors, trimming, UTF-8 check, option/answer validation
  import_csv.cpp      # RFC 4180 CSV reader
  import_chat.cpp     # chimed1, sharegpt, alpaca, preference-legacy
  import_text.cpp     # text (pretrain)
  import_exam.cpp)    # cmb, cmexam, medqa (mcq)
