# sources of this part of stepwise_data: target_sources(stepwise_data PRIVATE ...)
