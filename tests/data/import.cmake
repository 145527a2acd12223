# Importer tests: good records per format, bad records per field, skip mode, CSV reader, atomicity, the real binary.
stepwise_test(test_import LABELS main
  SOURCES test_import_formats.cpp test_import_bad.cpp test_import_csv.cpp test_import_cli.cpp
  LIBS stepwise_data)
add_dependencies(test_import stepwise)   # test_import_cli.cpp runs the binary (STEPWISE_BINARY)
