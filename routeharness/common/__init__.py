"""The foundation every other folder stands on: the error classes, files (JSON, atomic writes), the built-in resources' location and the progress interface. Imports nothing else of routeharness."""
