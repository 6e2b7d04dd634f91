"""One module per CLI verb; each exposes main(gflags, args) -> exit code.

(Not state, start, kill and delete: those few lines are in pyrunc/cli.py, see there.)"""
