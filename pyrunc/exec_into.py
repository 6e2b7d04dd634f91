"""`pyrunc exec`: start one more process inside a running container.

The process joins every namespace of the init (through /proc/<init>/ns/*)
and its cgroups, gets the process settings it was given and nothing from the
host, and execs.  The plan is built the same way as for create, from the
config saved in state.json at create time.
"""
from pyrunc.errors import StateError, UsageError
from pyrunc.plan.steps import Plan, SetupConsole
from pyrunc.record import replace
from pyrunc.state import Container

# OCI namespace type -> name under /proc/<pid>/ns
PROC_NS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "user": "user", "cgroup": "cgroup", "time": "time"}


def process_from_flags(base, args, flags):
    """runc's rules for `exec` without --process: the config's process, overridden."""
    from pyrunc.spec.config import Capabilities, Process, User
    if not args:
        raise UsageError("exec: no command given: pass arguments or --process")
    proc = Process.from_dict(base) if base else Process(args=())
    user = proc.user
    if flags.get("user"):
        uid, _, gid = flags["user"].partition(":")
        try:
            user = User(int(uid), int(gid) if gid else user.gid, user.umask, user.additional_gids)
        except ValueError:
            raise UsageError(f"invalid --user {flags['user']!r}: want uid[:gid]") from None
    if flags.get("additional_gids"):
        try:
            gids = tuple(int(g) for g in flags["additional_gids"])
        except ValueError:
            raise UsageError("--additional-gids takes numbers") from None
        user = replace(user, additional_gids=gids)
    caps = proc.capabilities or Capabilities((), (), (), (), ())
    extra = tuple(flags.get("cap") or ())
    if extra:
        # like runc >= 1.1.2: never into the inheritable set (CVE-2022-29162)
        caps = Capabilities(tuple(caps.bounding or ()) + extra, tuple(caps.effective or ()) + extra,
                            caps.inheritable, tuple(caps.permitted or ()) + extra,
                            tuple(caps.ambient or ()) + extra)
    return replace(
        proc, args=tuple(args), user=user, capabilities=caps,
        cwd=flags.get("cwd") or proc.cwd,
        env=tuple(proc.env) + tuple(flags.get("env") or ()),
        terminal=flags.get("tty", proc.terminal),
        no_new_privileges=flags.get("no_new_privs") or proc.no_new_privileges)


def exec_plan(config, init_pid, process, preserve_fds, cgroup_dirs):
    from pyrunc.plan.namespaces import plan_namespaces
    from pyrunc.plan.process import plan_process
    joined = tuple(replace(ns, path=f"/proc/{init_pid}/ns/{PROC_NS[ns.type]}")
                   for ns in config.linux.namespaces)
    config = replace(config, process=process,
                     linux=replace(config.linux, namespaces=joined))
    from pyrunc.plan.extras import add_extras, around_cgroup_join
    steps = []
    if cgroup_dirs:
        from pyrunc.plan.cgroups import join_steps
        steps += join_steps(cgroup_dirs)
    steps = around_cgroup_join(process, steps)   # process.execCPUAffinity
    steps += plan_namespaces(config)
    if process.terminal:
        steps.append(SetupConsole(process.console_size, bind_console=False))
    userns = config.linux.namespace("user") is not None
    container_steps, start_steps = plan_process(config, preserve_fds=preserve_fds,
                                                userns=userns, for_exec=True)
    container_steps = add_extras(config, container_steps, for_exec=True)
    from pyrunc.plan.seccomp import add_seccomp  # the container's filter binds exec'd processes too
    steps = add_seccomp(config, steps + container_steps + start_steps)
    from pyrunc.cgroups.host import probe
    from pyrunc.plan.execspawn import shape_for_spawn
    steps = shape_for_spawn(steps, probe().v2_mount if cgroup_dirs else None, process.terminal)
    return config, Plan(tuple(steps))


def exec_into(root, cid, process, *, detach=False, pid_file=None, console_socket=None,
              preserve_fds=0, ignore_paused=False):
    """Start the process; returns its pid (detached) or its exit code."""
    from pyrunc.spec.config import Config
    if process.terminal and not console_socket and detach:
        raise UsageError("cannot allocate tty if pyrunc will detach without setting console socket")
    if console_socket and not process.terminal:
        raise UsageError("cannot use console socket if pyrunc will not detach or allocate tty")
    if not detach:
        import pyrunc.syscalls as sys_
        sys_.prctl(sys_.C.PR_SET_CHILD_SUBREAPER, 1)
    c = Container(root, cid).lock()
    try:
        status = c.status()
        if status == "stopped":
            raise StateError("cannot exec in a stopped container")
        if status == "paused" and not ignore_paused:
            raise StateError("cannot exec in a paused container (use --ignore-paused to override)")
        st = c.state
        config = Config.from_dict(st.config, st.bundle)
        config, plan = exec_plan(config, st.pid, process, preserve_fds, st.cgroups)
        from pyrunc.executor.launch import launch
        state = c.oci_state()
        pid = launch(plan, config, None, console_socket=console_socket,
                     preserve_fds=preserve_fds, creating_state=lambda _pid: state, for_exec=True,
                     lock_fd=c.lock_fd)
        if pid_file:
            from pyrunc.lifecycle import write_pid_file
            write_pid_file(pid_file, pid)
    finally:
        c.unlock()
    if detach:
        return 0
    from pyrunc.commands.run import wait_forwarding
    return wait_forwarding(pid)
