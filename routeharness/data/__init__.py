"""The dataset model and everything that reads, writes, validates and describes a routing task: columns, readers of every layout and format, task cards and specs, task loading, synthetic tasks."""
