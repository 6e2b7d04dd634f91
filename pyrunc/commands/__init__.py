"""One module per CLI verb; each exposes main(gflags, args) -> exit code."""
