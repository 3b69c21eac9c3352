/* _filter.c: IPAddressAllow=/IPAddressDeny= in C (see there). */
#ifndef ACTIVATOR_FILTER_H
#define ACTIVATOR_FILTER_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <sys/socket.h>

/* attach_filter(fd, program): SO_ATTACH_FILTER with a packed array of struct sock_filter. */
PyObject *attach_filter(PyObject *self, PyObject *args);
/* Whether the peer falls in one of the n denied ranges of `table` (ipfilter.table()). */
int addr_denied(const unsigned char *table, size_t n, const struct sockaddr_storage *sa);
#endif
