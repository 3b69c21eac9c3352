/*
 * accept_fork -- the "perfect tcpserver": the smallest accept loop that spawns
 * one process per connection, to give the ceiling for Accept=yes supervisors.
 *
 * Origin: the project's shared yardstick, bench/accept_fork.c (the limit-fork /
 * limit-spawn rows of results/baseline.md), copied unchanged apart from this note.
 *
 *   accept_fork [-m fork|vfork|spawn] [-b backlog] HOST PORT PROG [ARGS...]
 *
 * Blocking accept4() on one IPv4 listener; the connection becomes the child's
 * fd 0 and fd 1 (inetd convention); the parent closes its copy and goes back to
 * accept().  Children are reaped with waitpid(WNOHANG) after every accept and
 * on SIGCHLD (handler without SA_RESTART, so accept() returns EINTR), so their
 * CPU time lands in the parent's cutime/cstime like any real supervisor.
 * No logging, no limits, no environment set-up: nothing a real supervisor can
 * do is cheaper.  -m spawn uses posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static void on_chld(int s) { (void)s; }

/* fork/vfork + exec in its own frame, so vfork's shared stack cannot clobber main's locals */
static __attribute__((noinline)) pid_t fork_exec(int use_vfork, int c, char **cargv) {
    pid_t pid = use_vfork ? vfork() : fork();
    if (pid == 0) {
        dup2(c, 0); dup2(c, 1);
        if (c > 1) close(c);
        signal(SIGPIPE, SIG_DFL); signal(SIGCHLD, SIG_DFL);
        execv(cargv[0], cargv);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv) {
    const char *mode = "fork";
    int backlog = 4096, o;
    while ((o = getopt(argc, argv, "+m:b:")) != -1) {
        if (o == 'm') mode = optarg;
        else if (o == 'b') backlog = atoi(optarg);
        else goto usage;
    }
    if (argc - optind < 3) {
    usage:
        fprintf(stderr, "usage: accept_fork [-m fork|vfork|spawn] [-b backlog] HOST PORT PROG [ARGS...]\n");
        return 2;
    }
    int m = !strcmp(mode, "fork") ? 0 : !strcmp(mode, "vfork") ? 1 : !strcmp(mode, "spawn") ? 2 : -1;
    if (m < 0) goto usage;
    char **cargv = argv + optind + 2;

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[optind + 1]))};
    if (inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, backlog) < 0) { perror("accept_fork: bind/listen"); return 1; }

    struct sigaction act = {.sa_handler = on_chld};  /* no SA_RESTART on purpose */
    sigemptyset(&act.sa_mask);
    sigaction(SIGCHLD, &act, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        int c = accept4(lfd, NULL, NULL, 0);  /* not CLOEXEC: dup2'd into the child */
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) { usleep(1000); continue; }
            perror("accept_fork: accept");
            return 1;
        }
        pid_t pid;
        if (m == 2) {
            posix_spawn_file_actions_t fa;
            posix_spawn_file_actions_init(&fa);
            posix_spawn_file_actions_adddup2(&fa, c, 0);
            posix_spawn_file_actions_adddup2(&fa, c, 1);
            posix_spawn_file_actions_addclose(&fa, c);
            posix_spawnattr_t at;
            posix_spawnattr_init(&at);
            sigset_t def; sigemptyset(&def); sigaddset(&def, SIGPIPE); sigaddset(&def, SIGCHLD);
            posix_spawnattr_setsigdefault(&at, &def);
            posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF);
            int e = posix_spawn(&pid, cargv[0], &fa, &at, cargv, environ);
            posix_spawn_file_actions_destroy(&fa);
            posix_spawnattr_destroy(&at);
            if (e) { errno = e; perror("accept_fork: posix_spawn"); }
        } else {
            pid = fork_exec(m == 1, c, cargv);
            if (pid < 0) perror("accept_fork: fork");
        }
        close(c);
    }
}
