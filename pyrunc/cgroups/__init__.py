"""cgroups at runtime: the host's layout (host), and a container's cgroups
after create (manager: pids, freeze, update, stats, OOM events, destroy).

Planning what create writes lives in pyrunc.plan.cgroups; the writes
themselves in pyrunc.executor.cgroups.  Nothing here imports jsonschema or
pyroute2, and pyrunc.cgroups.manager imports only the standard library's
cheapest modules, so `kill --all`, `delete` and `pause` stay fast.
"""
