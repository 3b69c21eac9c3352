/*
 * loadgen -- connection-per-request TCP load client for socket-activation
 * benchmarks (one process, one thread, epoll, non-blocking sockets).
 *
 * Origin: the project's shared yardstick, bench/loadgen.c (the client of
 * results/baseline.md), copied unchanged apart from this note.
 *
 * Opens N connections in total, at most C at once, to HOST:PORT; optionally
 * writes a request string; reads each response to EOF; closes.  Records per
 * connection the latency from connect() to EOF and to the first byte.
 *
 * Bounded: stops launching after N connections or after -t seconds, whichever
 * comes first; a connection still open after -T ms is abandoned and counted
 * as a timeout; the process exits at the latest -t seconds + -T ms after start.
 *
 * usage: loadgen -p PORT [-H 127.0.0.1] [-n 1000] [-c 1] [-t 60] [-T 10000]
 *                [-s REQUEST] [-e MINBYTES] [-W WARMUP] [-j]
 *   -s  request to send after connecting ("\n" escapes understood); default none
 *   -e  minimum response size for a connection to count as ok (default 1;
 *       0 for services that answer nothing, like svc_true)
 *   -W  warm-up connections made one at a time before measuring (not counted)
 *   -j  print one JSON object on stdout instead of the human summary
 * Exit status: 0 if every measured connection was ok, 1 otherwise, 2 on usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { S_IDLE, S_SENDING, S_READING };
struct conn { int fd, state; double t0, tfirst; size_t got, sent; };

static struct sockaddr_in g_sa;
static const char *g_req; static size_t g_reqlen;
static long g_min_bytes = 1;
static double g_conn_timeout_ms = 10000;
static int g_ep;
static struct conn *g_conns;
static long g_n, g_started, g_done, g_ok;
static long e_refused, e_reset, e_timeout, e_short, e_other, e_connect_other;
static double *g_lat, *g_ttfb;
static long g_nlat;
static double g_deadline;
static char g_buf[65536];

static double now_ms(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void finish(int i, int err) {  /* err: 0 ok, else errno-ish category */
    struct conn *c = &g_conns[i];
    double t = now_ms();
    close(c->fd);
    c->fd = -1; c->state = S_IDLE;
    g_done++;
    if (!err) {
        if ((long)c->got < g_min_bytes) { e_short++; return; }
        g_ok++;
        g_lat[g_nlat] = t - c->t0;
        g_ttfb[g_nlat] = c->got ? c->tfirst - c->t0 : t - c->t0;
        g_nlat++;
        return;
    }
    switch (err) {
    case ECONNREFUSED: e_refused++; break;
    case ECONNRESET: case EPIPE: e_reset++; break;
    case ETIMEDOUT: e_timeout++; break;
    default: e_other++; break;
    }
}

static void launch(int i) {
    struct conn *c = &g_conns[i];
    if (g_started >= g_n || now_ms() >= g_deadline) return;
    g_started++;
    c->got = c->sent = 0; c->tfirst = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { e_connect_other++; g_done++; return; }
    c->t0 = now_ms();
    int r = connect(c->fd, (struct sockaddr *)&g_sa, sizeof g_sa);
    if (r < 0 && errno != EINPROGRESS) {
        int e = errno;
        c->state = S_READING; /* so finish() bookkeeping is uniform */
        finish(i, e == ECONNREFUSED ? ECONNREFUSED : e);
        return;
    }
    c->state = g_reqlen ? S_SENDING : S_READING;
    struct epoll_event ev = {.events = g_reqlen ? EPOLLOUT : EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) { perror("epoll_ctl"); exit(3); }
}

static int sock_error(int fd) {
    int e = 0; socklen_t l = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
    return e ? e : ECONNRESET;
}

static void on_event(int i, uint32_t evs) {
    struct conn *c = &g_conns[i];
    if (c->state == S_SENDING) {
        if (evs & (EPOLLERR | EPOLLHUP) && !(evs & EPOLLOUT)) { finish(i, sock_error(c->fd)); return; }
        ssize_t w = send(c->fd, g_req + c->sent, g_reqlen - c->sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) return;
            finish(i, errno); return;
        }
        c->sent += (size_t)w;
        if (c->sent < g_reqlen) return;
        c->state = S_READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    for (;;) {
        ssize_t r = read(c->fd, g_buf, sizeof g_buf);
        if (r > 0) {
            if (!c->got) c->tfirst = now_ms();
            c->got += (size_t)r;
            continue;
        }
        if (r == 0) { finish(i, 0); return; }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        finish(i, errno); return;
    }
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double pct(const double *v, long n, double p) {
    if (n <= 0) return NAN;
    long k = (long)ceil(p * n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return v[k];
}

static char *unescape(const char *s, size_t *len) {
    char *o = malloc(strlen(s) + 1), *p = o;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *p++ = *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s == 't' ? '\t' : *s;
        } else *p++ = *s;
    }
    *len = (size_t)(p - o);
    return o;
}

/* one blocking connection for warm-up; returns 0 if ok */
static int warm_one(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {(long)(g_conn_timeout_ms / 1000), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&g_sa, sizeof g_sa) < 0) { close(fd); return -1; }
    if (g_reqlen && send(fd, g_req, g_reqlen, MSG_NOSIGNAL) < 0) { close(fd); return -1; }
    ssize_t r; size_t got = 0;
    while ((r = read(fd, g_buf, sizeof g_buf)) > 0) got += (size_t)r;
    close(fd);
    return (r == 0 && (long)got >= g_min_bytes) ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, conc = 1, json = 0, warm = 0, o;
    double tlimit = 60;
    g_n = 1000;
    while ((o = getopt(argc, argv, "H:p:n:c:t:T:s:e:W:j")) != -1) {
        switch (o) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': g_n = atol(optarg); break;
        case 'c': conc = atoi(optarg); break;
        case 't': tlimit = atof(optarg); break;
        case 'T': g_conn_timeout_ms = atof(optarg); break;
        case 's': g_req = unescape(optarg, &g_reqlen); break;
        case 'e': g_min_bytes = atol(optarg); break;
        case 'W': warm = atoi(optarg); break;
        case 'j': json = 1; break;
        default: goto usage;
        }
    }
    if (port <= 0 || g_n <= 0 || conc <= 0) {
    usage:
        fprintf(stderr, "usage: loadgen -p PORT [-H host] [-n total] [-c conc] [-t secs] [-T conn_timeout_ms] [-s req] [-e minbytes] [-W warmup] [-j]\n");
        return 2;
    }
    if (conc > g_n) conc = (int)g_n;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)conc + 64) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    g_sa.sin_family = AF_INET; g_sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &g_sa.sin_addr) != 1) { fprintf(stderr, "loadgen: bad host %s (IPv4 literal)\n", host); return 2; }

    int warm_fail = 0;
    for (int i = 0; i < warm; i++) warm_fail += warm_one() != 0;

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    g_conns = calloc((size_t)conc, sizeof *g_conns);
    g_lat = malloc(sizeof(double) * (size_t)g_n);
    g_ttfb = malloc(sizeof(double) * (size_t)g_n);
    struct epoll_event *evs = calloc((size_t)conc, sizeof *evs);

    struct rusage ru0; getrusage(RUSAGE_SELF, &ru0);
    double t_start = now_ms();
    g_deadline = t_start + tlimit * 1000;
    double hard_stop = g_deadline + g_conn_timeout_ms, last_scan = t_start;
    for (int i = 0; i < conc; i++) { g_conns[i].fd = -1; launch(i); }

    long inflight;
    for (;;) {
        /* refill idle slots (a launch may have failed synchronously), count in-flight */
        inflight = 0;
        for (int i = 0; i < conc; i++) {
            if (g_conns[i].fd < 0 && g_started < g_n) launch(i);
            inflight += g_conns[i].fd >= 0;
        }
        if (inflight == 0) {
            if (g_started < g_n && now_ms() < g_deadline) continue;
            break;
        }
        int n = epoll_wait(g_ep, evs, conc, 100);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 3; }
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            if (g_conns[i].fd < 0) continue;
            on_event(i, evs[k].events);
            if (g_conns[i].fd < 0) launch(i);
        }
        double t = now_ms();
        if (t - last_scan >= 100 || t >= hard_stop) {
            last_scan = t;
            for (int i = 0; i < conc; i++) {
                if (g_conns[i].fd >= 0 && (t - g_conns[i].t0 >= g_conn_timeout_ms || t >= hard_stop)) {
                    finish(i, ETIMEDOUT);
                    launch(i);
                }
            }
            if (t >= hard_stop) break;
        }
    }
    double wall = (now_ms() - t_start) / 1000.0;
    struct rusage ru1; getrusage(RUSAGE_SELF, &ru1);
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

    double mean = 0;
    for (long i = 0; i < g_nlat; i++) mean += g_lat[i];
    mean = g_nlat ? mean / g_nlat : NAN;
    qsort(g_lat, (size_t)g_nlat, sizeof(double), cmpd);
    qsort(g_ttfb, (size_t)g_nlat, sizeof(double), cmpd);
    long errors = e_refused + e_reset + e_timeout + e_short + e_other + e_connect_other;
    long not_started = g_n - g_started;
    double rate = wall > 0 ? g_ok / wall : 0;
    if (json) {
        printf("{\"host\":\"%s\",\"port\":%d,\"n\":%ld,\"c\":%d,\"started\":%ld,\"ok\":%ld,\"errors\":%ld,"
               "\"err\":{\"refused\":%ld,\"reset\":%ld,\"timeout\":%ld,\"short\":%ld,\"other\":%ld,\"socket\":%ld},"
               "\"not_started\":%ld,\"warmup\":%d,\"warmup_failed\":%d,\"wall_s\":%.6f,\"rate\":%.2f,"
               "\"lat_ms\":{\"mean\":%.4f,\"min\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f},"
               "\"ttfb_ms\":{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f},"
               "\"client_cpu_s\":%.4f,\"client_cpu_pct\":%.1f}\n",
               host, port, g_n, conc, g_started, g_ok, errors, e_refused, e_reset, e_timeout, e_short, e_other,
               e_connect_other, not_started, warm, warm_fail, wall, rate, mean, g_nlat ? g_lat[0] : NAN,
               pct(g_lat, g_nlat, .5), pct(g_lat, g_nlat, .9), pct(g_lat, g_nlat, .99),
               g_nlat ? g_lat[g_nlat - 1] : NAN, pct(g_ttfb, g_nlat, .5), pct(g_ttfb, g_nlat, .9),
               pct(g_ttfb, g_nlat, .99), g_nlat ? g_ttfb[g_nlat - 1] : NAN, cpu, wall > 0 ? 100 * cpu / wall : 0);
    } else {
        printf("loadgen %s:%d n=%ld c=%d: ok=%ld errors=%ld (refused=%ld reset=%ld timeout=%ld short=%ld other=%ld)%s\n"
               "  wall=%.3fs  rate=%.1f conn/s\n"
               "  connect->EOF ms: p50=%.3f p90=%.3f p99=%.3f max=%.3f   connect->first byte p50=%.3f\n"
               "  client cpu=%.3fs (%.0f%% of one core)\n",
               host, port, g_n, conc, g_ok, errors, e_refused, e_reset, e_timeout, e_short, e_other + e_connect_other,
               not_started ? " [time limit hit]" : "", wall, rate, pct(g_lat, g_nlat, .5), pct(g_lat, g_nlat, .9),
               pct(g_lat, g_nlat, .99), g_nlat ? g_lat[g_nlat - 1] : NAN, pct(g_ttfb, g_nlat, .5), cpu,
               wall > 0 ? 100 * cpu / wall : 0);
    }
    return (errors || not_started) ? 1 : 0;
}
