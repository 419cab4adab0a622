"""A benchmark app whose only handler does nothing, to measure the processing machinery."""
