/* IPAddressAllow=/IPAddressDeny= in C: attaching the classic BPF program exec/ipfilter.py
 * compiled (SO_ATTACH_FILTER needs no privilege, and no cgroup), and the accept lane's own
 * check of a peer against the denied ranges: a binary search over sorted, disjoint
 * (first, last) pairs of 16-byte big-endian addresses, IPv4 as ::ffff:a.b.c.d. */
#define _GNU_SOURCE
#include "_filter.h"
#include <linux/filter.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

PyObject *attach_filter(PyObject *self, PyObject *args)
{
    (void)self;
    int fd;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "iy*", &fd, &b)) return NULL;
    if (b.len <= 0 || b.len % (Py_ssize_t)sizeof(struct sock_filter) ||
        b.len / (Py_ssize_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "attach_filter: not a classic BPF program");
        return NULL;
    }
    struct sock_fprog prog = {.len = (unsigned short)(b.len / (Py_ssize_t)sizeof(struct sock_filter)),
                              .filter = b.buf};
    int rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
    PyBuffer_Release(&b);
    if (rc < 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* The peer as one 128-bit big-endian value; 0 for a family without an address. */
static int peer_key(const struct sockaddr_storage *sa, unsigned char key[16])
{
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->sin_addr, 4);
        return 1;
    }
    if (sa->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 1;
    }
    return 0;
}

int addr_denied(const unsigned char *table, size_t n, const struct sockaddr_storage *sa)
{
    unsigned char key[16];
    if (n == 0 || !peer_key(sa, key)) return 0;
    size_t lo = 0, hi = n; /* the last range whose first address is <= key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(table + 32 * mid, key, 16) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo > 0 && memcmp(key, table + 32 * (lo - 1) + 16, 16) <= 0;
}
