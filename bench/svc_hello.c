/*
 * svc_hello -- tiny service for socket-activation benchmarks.
 *
 * Origin: the project's shared yardstick, bench/svc_hello.c (the anchors of
 * results/baseline.md). Changed here: -M MODE and -U UID, so that a run in the
 * wrong calling convention or with the wrong credentials fails visibly (no
 * answer: loadgen counts it as a "short" error) instead of silently falling
 * back to fd 0/1.
 *
 * One binary, every calling convention a socket-activation supervisor uses:
 *
 *   inetd / Accept=yes (StandardInput=socket) -- default:
 *       the connection is fd 0/1; optionally read one request line (-r),
 *       write RESPONSE to fd 1, exit.
 *   systemd Accept=yes (LISTEN_FDS=1, fd 3 is a *connected* socket):
 *       serve once on fd 3, exit.
 *   systemd Accept=no (LISTEN_FDS>=1, fd 3 is a *listening* socket):
 *       long-lived accept loop on fd 3.
 *   self-bound reference (-l HOST:PORT): bind+listen itself, same accept loop.
 *
 * LISTEN_FDS is honoured only when LISTEN_PID == getpid() (sd_listen_fds(3)
 * semantics); otherwise it is ignored with a warning and fd 0/1 are used.
 *
 * Options:
 *   -r        read one request line (up to '\n' or EOF) before replying
 *   -d MS     sleep MS milliseconds before replying (serialization probe)
 *   -l H:P    self-bound accept loop on H:P (IPv4), backlog 4096
 *   -n N      accept loop: exit after N connections (0 = forever)
 *   -M MODE   require this calling convention: inetd (fd 0/1, no LISTEN_FDS),
 *             fd3 (LISTEN_FDS=1, fd 3 connected) or listen (fd 3 listening);
 *             otherwise exit 3 without answering
 *   -U UID    require getuid() == geteuid() == UID; otherwise exit 4 without answering
 *   -L        fd3 mode: also write one log line to stderr per connection (a service with
 *             output: activator captures it, issue 13)
 *   -W MB     write MB MiB of 100-byte lines to stdout and exit (log capture's cost per MB)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char RESPONSE[] = "hello from svc_hello\n";
static int opt_read, opt_delay_ms, opt_log;
static long opt_max_conns;
static const char *opt_mode;

/* -M: the convention we were started in must be the one the caller asked for */
static void require_mode(const char *got) {
    if (opt_mode && strcmp(opt_mode, got) != 0) {
        fprintf(stderr, "svc_hello: started as %s, expected %s\n", got, opt_mode);
        exit(3);
    }
}

static void read_line(int fd) {
    char buf[512];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        if (memchr(buf, '\n', (size_t)r)) return;
    }
}

static void delay(void) {
    if (opt_delay_ms > 0) {
        struct timespec ts = {opt_delay_ms / 1000, (long)(opt_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* serve one connection: in_fd to read the request from, out_fd to answer on */
static int serve_once(int in_fd, int out_fd) {
    if (opt_read) read_line(in_fd);
    delay();
    return write_all(out_fd, RESPONSE, sizeof RESPONSE - 1);
}

static int accept_loop(int lfd) {
    long served = 0;
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
            perror("svc_hello: accept");
            return 1;
        }
        serve_once(c, c);
        close(c);
        if (opt_max_conns > 0 && ++served >= opt_max_conns) return 0;
    }
}

static int is_listening(int fd) {
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0) return -1;
    return v;
}

static int self_bind(const char *hp) {
    char host[256];
    const char *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= sizeof host) { fprintf(stderr, "svc_hello: bad -l %s\n", hp); return -1; }
    memcpy(host, hp, (size_t)(colon - hp)); host[colon - hp] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "svc_hello: bad host %s\n", host); return -1; }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) { perror("socket"); return -1; }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("svc_hello: bind"); return -1; }
    if (listen(fd, 4096) < 0) { perror("svc_hello: listen"); return -1; }
    return fd;
}

int main(int argc, char **argv) {
    const char *listen_on = NULL;
    long want_uid = -1;
    int o;
    long write_mb = 0;
    while ((o = getopt(argc, argv, "rd:l:n:M:U:LW:")) != -1) {
        switch (o) {
        case 'r': opt_read = 1; break;
        case 'd': opt_delay_ms = atoi(optarg); break;
        case 'l': listen_on = optarg; break;
        case 'n': opt_max_conns = atol(optarg); break;
        case 'M': opt_mode = optarg; break;
        case 'U': want_uid = atol(optarg); break;
        case 'L': opt_log = 1; break;
        case 'W': write_mb = atol(optarg); break;
        default:
            fprintf(stderr, "usage: svc_hello [-r] [-d ms] [-n max] [-l host:port] [-M inetd|fd3|listen] [-U uid] [-L] [-W MB]\n");
            return 2;
        }
    }
    if (want_uid >= 0 && ((long)getuid() != want_uid || (long)geteuid() != want_uid)) {
        fprintf(stderr, "svc_hello: uid %ld/%ld, expected %ld\n", (long)getuid(), (long)geteuid(), want_uid);
        return 4;
    }
    if (write_mb > 0) {  /* -W: lines of 100 bytes, numbered, 1 MiB at a time */
        static char buf[1 << 20];
        size_t n = 0;
        long line = 0;
        for (long mb = 0; mb < write_mb; mb++) {
            for (n = 0; n + 100 <= sizeof buf; n += 100, line++) {
                int k = snprintf(buf + n, 101, "svc_hello line %09ld ", line);
                memset(buf + n + k, 'x', 99 - (size_t)k);
                buf[n + 99] = '\n';
            }
            if (write_all(1, buf, n) < 0) return 1;
        }
        return 0;
    }
    if (listen_on) {
        require_mode("listen");
        int fd = self_bind(listen_on);
        return fd < 0 ? 1 : accept_loop(fd);
    }

    const char *lfds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
    if (lfds) {
        if (!lpid || strtol(lpid, NULL, 10) != (long)getpid()) {
            fprintf(stderr, "svc_hello: LISTEN_PID=%s != getpid()=%ld, ignoring LISTEN_FDS\n",
                    lpid ? lpid : "(unset)", (long)getpid());
        } else if (atoi(lfds) >= 1) {
            unsetenv("LISTEN_FDS"); unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDNAMES");
            int l = is_listening(3);
            if (l < 0) { perror("svc_hello: fd 3"); return 1; }
            if (l) { require_mode("listen"); return accept_loop(3); }  /* Accept=no */
            require_mode("fd3");
            signal(SIGPIPE, SIG_IGN);
            if (opt_log) {  /* -L: one line to stderr, as a service with something to say */
                static const char LOGLINE[] = "svc_hello: served a connection on fd 3\n";
                write_all(2, LOGLINE, sizeof LOGLINE - 1);
            }
            return serve_once(3, 3) < 0 ? 1 : 0;       /* systemd Accept=yes */
        }
    }
    require_mode("inetd");
    signal(SIGPIPE, SIG_IGN);
    return serve_once(0, 1) < 0 ? 1 : 0;               /* inetd */
}
