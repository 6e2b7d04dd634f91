/*
 * pyrunc-init: what a created container's pid 1 runs until `pyrunc start`.
 *
 * Why a C program and not the Python init that set the container up:
 *  - CVE-2019-5736.  While a container waits in "created", other processes
 *    can join it (`exec`) and open /proc/1/exe.  If that is the host's Python
 *    interpreter, a container with CAP_SYS_PTRACE can keep the file and write
 *    it once nothing runs it.  pyrunc execs this program from a sealed memfd
 *    copy (executor/waiter.py): /proc/1/exe is then a file nobody can write.
 *  - Memory.  A container may wait for hours; a fork of the Python runtime
 *    holds megabytes of private pages, this static program a few pages.
 *
 * Everything else (namespaces, mounts, identity, seccomp) is done before the
 * exec of this program.  It waits for a writer on the exec fifo, then execs
 * the container's program.
 *
 *     pyrunc-init FIFO_FD PROGRAM_FD        (environment: the program's)
 *
 * PROGRAM_FD holds "path\0argv0\0arg1\0...": not our argv, so that `ps` in a
 * created container shows pyrunc-init and not the program (as runc does).
 *
 *     pyrunc-init spawn SYNC_FD PROGRAM_FD CTTY
 *
 * is `pyrunc exec`'s last step (executor/waiter.py): the process that joined
 * the container's namespaces, with every setting made, execs us; we fork the
 * program into the container's pid namespace, so that no process there is
 * ever the host's interpreter, report its pid on SYNC_FD (the runtime's
 * SOCK_SEQPACKET channel, one JSON object per datagram) once it has exec'd,
 * and exit.  CTTY=1: the program gets a session of its own with stdin's
 * terminal as its controlling one (we exit: it must not be in our session).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* pid 1 of a namespace ignores signals it has no handler for; runc's waiting
 * init dies of these, and `docker stop` of a created container counts on it. */
static const int deadly[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};

static void die_of(int sig)
{
    _exit(128 + sig);
}

static void say(const char *a, const char *b, const char *c, const char *d)
{
    const char *parts[] = {"pyrunc-init: ", a, b, c, d, "\n"};
    for (unsigned i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (write(2, parts[i], strlen(parts[i])) < 0)
            return;
}

static void wait_for_start(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char byte;

    for (;;) {
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            say("poll exec fifo: ", strerror(errno), "", "");
            _exit(1);
        }
        /* The fifo was opened O_RDONLY|O_NONBLOCK by create: POLLIN once
         * `start` wrote, POLLHUP once a writer came and went without writing. */
        if (p.revents & POLLIN) {
            if (read(fd, &byte, 1) < 0 && errno != EAGAIN) {
                say("read exec fifo: ", strerror(errno), "", "");
                _exit(1);
            }
            return;
        }
        if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
            return;
    }
}

static long fd_arg(const char *s)
{
    char *end;
    long fd = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || fd < 0) {
        say("bad fd argument ", s, "", "");
        _exit(2);
    }
    return fd;
}

/* The program's path and argv, from PROGRAM_FD; argv[0] of the result is the path. */
static char **read_program(int fd)
{
    struct stat st;
    char *buf, **argv;
    size_t n = 0, count = 0;
    ssize_t got;

    if (fstat(fd, &st) < 0) {
        say("program fd: ", strerror(errno), "", "");
        _exit(1);
    }
    if (st.st_size <= 0) {
        say("program fd: empty", "", "", "");
        _exit(1);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        say("out of memory", "", "", "");
        _exit(1);
    }
    while (n < (size_t)st.st_size) {
        got = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
        if (got <= 0) {
            say("read program fd: ", got < 0 ? strerror(errno) : "short read", "", "");
            _exit(1);
        }
        n += (size_t)got;
    }
    buf[n] = '\0';
    close(fd);
    for (size_t i = 0; i < n; i++)
        count += buf[i] == '\0';
    argv = calloc(count + 1, sizeof(char *));
    if (!argv) {
        say("out of memory", "", "", "");
        _exit(1);
    }
    for (size_t i = 0, at = 0; at < count; at++) {
        argv[at] = buf + i;
        i += strlen(buf + i) + 1;
    }
    return argv;
}

/* {"t":"error","msg":"WHAT: REASON"}, WHAT escaped for JSON */
static void send_error(int sync, const char *what, const char *path, int err)
{
    char msg[8192];
    const char *reason = strerror(err);
    size_t n = (size_t)snprintf(msg, sizeof(msg), "{\"t\":\"error\",\"msg\":\"%s", what);
    for (const char *c = path; *c && n < sizeof(msg) - 600; c++) {
        if (*c == '"' || *c == '\\')
            msg[n++] = '\\';
        if ((unsigned char)*c < 0x20)
            n += (size_t)snprintf(msg + n, 7, "\\u%04x", (unsigned char)*c);
        else
            msg[n++] = *c;
    }
    /* the runtime's words are Go's: "no such file or directory" */
    n += (size_t)snprintf(msg + n, sizeof(msg) - n, ": %c%s\"}",
                          reason[0] >= 'A' && reason[0] <= 'Z' ? reason[0] + 32 : reason[0],
                          reason + 1);
    if (write(sync, msg, n) < 0)
        _exit(1);
}

static int spawn(int sync, char **program, int ctty, char **envp)
{
    int report[2], failed[2] = {0, 0};   /* {errno, 1 if it was the terminal} */
    char msg[64];
    pid_t pid;

    if (pipe2(report, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        send_error(sync, "spawn", "", errno);
        return 1;
    }
    if (pid == 0) {
        close(report[0]);
        close(sync);
        if (ctty && (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)) {
            failed[0] = errno;
            failed[1] = 1;
        } else {
            execve(program[0], program + 1, envp);
            failed[0] = errno;
        }
        if (write(report[1], failed, sizeof(failed)) < 0)
            _exit(127);
        _exit(127);
    }
    close(report[1]);
    /* EOF, nothing read: the close-on-exec pipe went with a successful execve */
    while (read(report[0], failed, sizeof(failed)) < 0 && errno == EINTR)
        ;
    if (failed[0]) {
        /* reap it: orphaned, it would stay a zombie under the container's init */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (failed[1])
            send_error(sync, "ioctl(TIOCSCTTY)", "", failed[0]);
        else
            send_error(sync, "exec ", program[0], failed[0]);
        return 1;
    }
    snprintf(msg, sizeof(msg), "{\"t\":\"pid\",\"pid\":%d}", (int)pid);
    return write(sync, msg, strlen(msg)) < 0;
}

int main(int argc, char **argv, char **envp)
{
    struct sigaction sa;
    char **program;
    int fifo;

    if (argc == 5 && strcmp(argv[1], "spawn") == 0) {
        program = read_program((int)fd_arg(argv[3]));
        return spawn((int)fd_arg(argv[2]), program, strcmp(argv[4], "1") == 0, envp);
    }
    if (argc != 3) {
        say("usage: pyrunc-init FIFO_FD PROGRAM_FD", "", "", "");
        return 2;
    }
    fifo = (int)fd_arg(argv[1]);
    program = read_program((int)fd_arg(argv[2]));
    if (!program[0] || !program[1]) {
        say("program fd: want a path and argv[0]", "", "", "");
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = die_of;
    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < sizeof(deadly) / sizeof(deadly[0]); i++)
        sigaction(deadly[i], &sa, NULL);

    wait_for_start(fifo);
    close(fifo);
    /* execve resets the caught signals to their defaults */
    execve(program[0], program + 1, envp);
    say("exec ", program[0], ": ", strerror(errno));
    return 1;
}
