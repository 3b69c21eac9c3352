/* proxyload: the proxy rows of `make bench` (issue 16): a server and its load client.
 *
 *   proxyload -s HOST PORT                 serve: per connection, the first byte says what
 *                                          to do: 'B' + 8 bytes (big-endian n): send n bytes
 *                                          and close; 'E': echo everything until EOF
 *   proxyload -b HOST PORT BYTES           bulk: ask for BYTES, read them to EOF; JSON
 *   proxyload -r HOST PORT C N SIZE        request/response: C connections, each N round
 *                                          trips of SIZE bytes; JSON with rate and latency
 *
 * Loopback only (the driver passes 127.0.0.1); every loop is bounded by its count, every
 * read by a 10 s timeout. The server runs until killed (the driver stops it). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int full(int fd, void *buf, size_t n, int reading)
{
    char *p = buf;
    while (n) {
        ssize_t k = reading ? read(fd, p, n) : write(fd, p, n);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return -1;
        }
        p += k, n -= (size_t)k;
    }
    return 0;
}

static int dial(const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* ---------------------------------------------------------------- server */
static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg, one = 1;
    char cmd;
    static char buf[1 << 16];
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (full(fd, &cmd, 1, 1) == 0) {
        if (cmd == 'B') {
            unsigned char b[8];
            uint64_t n = 0;
            if (full(fd, b, 8, 1) == 0) {
                for (int i = 0; i < 8; i++) n = n << 8 | b[i];
                char *out = malloc(1 << 20);
                memset(out, 'x', 1 << 20);
                while (n) {
                    size_t k = n < (1 << 20) ? (size_t)n : (1 << 20);
                    if (full(fd, out, k, 0) < 0) break;
                    n -= k;
                }
                free(out);
            }
        } else if (cmd == 'E') {
            ssize_t k;
            char *own = malloc(1 << 16);
            while ((k = read(fd, own, 1 << 16)) > 0)
                if (full(fd, own, (size_t)k, 0) < 0) break;
            free(own);
        }
    }
    (void)buf;
    close(fd);
    return NULL;
}

static int server(const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1024) < 0) {
        perror("bind");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, serve, (void *)(intptr_t)fd)) close(fd);
        pthread_attr_destroy(&at);
    }
}

/* ---------------------------------------------------------------- clients */
static int bulk(const char *host, int port, unsigned long long n)
{
    double t0 = now();
    int fd = dial(host, port);
    unsigned char req[9] = {'B'};
    for (int i = 0; i < 8; i++) req[1 + i] = (unsigned char)(n >> (56 - 8 * i));
    if (full(fd, req, 9, 0) < 0) return 1;
    static char buf[1 << 20];
    unsigned long long got = 0;
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) got += (unsigned long long)k;
    double wall = now() - t0;
    close(fd);
    printf("{\"bytes\": %llu, \"wall_s\": %.6f, \"mib_s\": %.1f, \"ok\": %s}\n", got, wall,
           got / wall / 1048576.0, got == n ? "true" : "false");
    return got == n ? 0 : 1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int rr(const char *host, int port, int c, int n, int size)
{
    int *fd = calloc((size_t)c, sizeof *fd), *left = calloc((size_t)c, sizeof *left);
    double *sent = calloc((size_t)c, sizeof *sent), *lat = malloc((size_t)c * n * sizeof *lat);
    char *msg = malloc((size_t)size), *in = malloc((size_t)size);
    struct pollfd *p = calloc((size_t)c, sizeof *p);
    memset(msg, 'r', (size_t)size);
    size_t nl = 0;
    for (int i = 0; i < c; i++) {
        fd[i] = dial(host, port);
        if (full(fd[i], "E", 1, 0) < 0) return 1;
    }
    double t0 = now();
    for (int i = 0; i < c; i++) {
        left[i] = n;
        sent[i] = now();
        if (full(fd[i], msg, (size_t)size, 0) < 0) return 1;
        p[i] = (struct pollfd){.fd = fd[i], .events = POLLIN};
    }
    int active = c, errors = 0;
    while (active) {
        if (poll(p, (nfds_t)c, 10000) <= 0) {
            errors++;
            break;
        }
        for (int i = 0; i < c; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (full(fd[i], in, (size_t)size, 1) < 0) {
                errors++, p[i].fd = -1, active--;
                continue;
            }
            double t = now();
            lat[nl++] = t - sent[i];
            if (--left[i] == 0) {
                p[i].fd = -1, active--;
                continue;
            }
            sent[i] = t;
            if (full(fd[i], msg, (size_t)size, 0) < 0) errors++, p[i].fd = -1, active--;
        }
    }
    double wall = now() - t0;
    qsort(lat, nl, sizeof *lat, cmp);
    printf("{\"round_trips\": %zu, \"wall_s\": %.6f, \"rate\": %.1f, \"p50_us\": %.1f, "
           "\"p99_us\": %.1f, \"errors\": %d}\n",
           nl, wall, nl / wall, nl ? 1e6 * lat[nl / 2] : -1.0,
           nl ? 1e6 * lat[(size_t)(nl * 0.99)] : -1.0, errors);
    for (int i = 0; i < c; i++) close(fd[i]);
    return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "-s")) return server(argv[2], atoi(argv[3]));
    if (argc >= 5 && !strcmp(argv[1], "-b")) return bulk(argv[2], atoi(argv[3]), strtoull(argv[4], 0, 10));
    if (argc >= 7 && !strcmp(argv[1], "-r"))
        return rr(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    fprintf(stderr, "usage: proxyload -s HOST PORT | -b HOST PORT BYTES | -r HOST PORT C N SIZE\n");
    return 2;
}
