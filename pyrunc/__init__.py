"""pyrunc: a low-level OCI container runtime, a drop-in for runc."""
