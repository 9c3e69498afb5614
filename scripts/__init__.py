"""Developer tools: the fake Telzino API, the local Home Assistant driver, benchmarks."""
