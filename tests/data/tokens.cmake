# tests of this part: stepwise_test(... LABELS main SOURCES ... LIBS stepwise_data)
