"""pyrunc vs runc (and crun) benchmark: `sudo .venv/bin/python bench/run.py`.

See bench/README.md.  Standard library only, plus pyrunc.demo for the rootfs.
"""
