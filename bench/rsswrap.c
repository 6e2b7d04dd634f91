/* rsswrap FILE PROG ARGS...: run PROG, write its peak RSS (KiB) to FILE, exit as it did.
 *
 * Why a C helper: a process's ru_maxrss also counts the memory of whatever it
 * was before exec, so a runtime spawned straight from the (Python) bench would
 * report the bench's RSS as its own peak.  Forked from this tiny process, the
 * runtime's figure is its own (plus the children it reaped, as for any wait4).
 * Used only for the peak-RSS passes, never around a timed command.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: rsswrap FILE PROG [ARGS...]\n");
        return 125;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("rsswrap: fork");
        return 126;
    }
    if (pid == 0) {
        execv(argv[2], argv + 2);
        perror("rsswrap: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("rsswrap: wait4");
        return 126;
    }
    FILE *f = fopen(argv[1], "w");
    if (f == NULL || fprintf(f, "%ld\n", ru.ru_maxrss) < 0 || fclose(f) != 0) {
        perror("rsswrap: write");
        return 126;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
