/* The init as a vfork child of `pyrunc create` (pyrunc._libc, appended to the
 * source in _libc_build.py; syscalls.clone_vm is its only caller).
 *
 * A forked init shares the runtime's pages copy-on-write: every page the
 * parent or the child writes before the child's execve is copied (Python's
 * reference counts write to every object it touches: ~600 pages a create,
 * ~2.5 us each on a VM), the page tables are copied first and torn down at
 * the execve.  With CLONE_VM | CLONE_VFORK the child runs in the runtime's
 * memory on a stack of its own and the runtime sleeps until the child has
 * exec'd or exited: the child is, to the interpreter, a call that never
 * returns, made on the runtime's own thread state.
 *
 * What that costs in care (launch.py only takes this road where it holds):
 * the runtime must not run Python meanwhile (it sleeps; no other thread may
 * exist), the child must never wait for it (no sync answer, no start), and
 * what the child changes in shared objects the runtime sees.  The runtime's
 * thread state is saved before and restored after, since the child left it
 * describing frames on a stack that is gone.
 */
#include <sys/mman.h>
#include <sys/prctl.h>

static void pyrunc_vm_child_main(void);   /* extern "Python": syscalls.py */

static void __attribute__((noreturn, used)) pyrunc_vm_start(void)
{
    pyrunc_vm_child_main();
    _exit(127);   /* the Python side execs or exits: a return is a bug */
}

#if defined(__x86_64__)
/* clone3() whose child starts in pyrunc_vm_start on the new stack.  Inline
 * assembly, not syscall(): the child cannot return through a C frame of
 * ours, and the parent must not find its registers or frames clobbered. */
static inline __attribute__((always_inline)) long pyrunc_clone3_vm(void *args, long size)
{
    register long ret __asm__("rax") = 435;   /* SYS_clone3 */
    register void (*start)(void) __asm__("r12") = pyrunc_vm_start;
    __asm__ volatile(
        "syscall\n\t"
        "testq %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "xorl %%ebp, %%ebp\n\t"      /* the child: the end of the frame chain */
        "call *%%r12\n\t"
        "hlt\n"
        "1:\n"
        : "+r"(ret)
        : "D"(args), "S"(size), "r"(start)
        : "rcx", "r11", "memory", "cc");
    return ret;
}
#define PYRUNC_HAVE_CLONE_VM 1
#endif

/* SIG_DFL for sig, for the kernel only: Python's signal.signal() would also
 * write the interpreter's table of handlers, which a vm child shares. */
int pyrunc_default_signal(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    return sigaction(sig, &sa, NULL);
}

#define PYRUNC_VM_STACK (1 << 20)

long pyrunc_clone_vm(unsigned long long flags, int cgroup_fd)
{
#ifdef PYRUNC_HAVE_CLONE_VM
    struct pyrunc_clone_args args;
    PyGILState_STATE gil;
    PyThreadState *ts, saved;
    char *stack;
    long pid;
    int dumpable;

    gil = PyGILState_Ensure();
    ts = PyThreadState_Get();
    if (PyInterpreterState_ThreadHead(ts->interp) != ts || PyThreadState_Next(ts) != NULL) {
        /* another thread would run Python in the child's memory */
        PyGILState_Release(gil);
        errno = EBUSY;
        return -1;
    }
    stack = mmap(NULL, PYRUNC_VM_STACK, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED) {
        int saved_errno = errno;
        PyGILState_Release(gil);
        errno = saved_errno;
        return -1;
    }
    memset(&args, 0, sizeof(args));
    args.flags = flags | CLONE_VM | CLONE_VFORK;
    if (cgroup_fd >= 0) {
        args.flags |= 0x200000000ULL;     /* CLONE_INTO_CGROUP (linux 5.7) */
        args.cgroup = (uint64_t)cgroup_fd;
    }
    args.exit_signal = SIGCHLD;
    args.stack = (uint64_t)(uintptr_t)stack;
    args.stack_size = PYRUNC_VM_STACK;
    saved = *ts;
    dumpable = prctl(PR_GET_DUMPABLE);
    pid = pyrunc_clone3_vm(&args, sizeof(args));
    /* The child has exec'd or exited.  It held the GIL throughout, except
       inside a blocking call: if it died in one, take the GIL back. */
    if (_PyThreadState_UncheckedGet() == NULL)
        PyEval_RestoreThread(ts);
    *ts = saved;
    /* the child's PR_SET_DUMPABLE 0 was our mm's: ours again as it was */
    if (dumpable >= 0 && prctl(PR_GET_DUMPABLE) != dumpable)
        prctl(PR_SET_DUMPABLE, dumpable);
    munmap(stack, PYRUNC_VM_STACK);
    PyGILState_Release(gil);
    if (pid < 0) {
        errno = (int)-pid;
        return -1;
    }
    return pid;
#else
    (void)flags;
    (void)cgroup_fd;
    errno = ENOSYS;
    return -1;
#endif
}
