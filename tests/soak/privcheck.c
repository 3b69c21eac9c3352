/*
 * privcheck -- what a service was given, in one line, for the privilege soak
 * (tests/soak/test_privileges.py): its ids, capability sets, no_new_privs, and the
 * fds it has open. Written to the connection: fd 1 (inetd style) or the connected
 * fd 3 (LISTEN_FDS=1), then exit.
 *
 *   uid=R,E,S,F gid=R,E,S,F groups=G,.. cap=INH,PRM,EFF,BND,AMB nnp=N fds=0,1,2[,3]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void field(const char *status, const char *name, char *out, size_t n)
{
    const char *p = strstr(status, name);
    out[0] = 0;
    if (!p) return;
    p += strlen(name);
    while (*p == ' ' || *p == '\t') p++;
    size_t i = 0;
    for (; p[i] && p[i] != '\n' && i + 1 < n; i++) out[i] = (p[i] == '\t' || p[i] == ' ') ? ',' : p[i];
    out[i] = 0;
    while (i > 0 && out[i - 1] == ',') out[--i] = 0;
}

int main(void)
{
    char status[8192], uid[128], gid[128], groups[512], ci[32], cp[32], ce[32], cb[32], ca[32], nnp[8];
    char fds[512] = "";
    FILE *f = fopen("/proc/self/status", "r");
    size_t n = f ? fread(status, 1, sizeof status - 1, f) : 0;
    if (f) fclose(f);
    status[n] = 0;
    field(status, "\nUid:", uid, sizeof uid);
    field(status, "\nGid:", gid, sizeof gid);
    field(status, "\nGroups:", groups, sizeof groups);
    field(status, "\nCapInh:", ci, sizeof ci);
    field(status, "\nCapPrm:", cp, sizeof cp);
    field(status, "\nCapEff:", ce, sizeof ce);
    field(status, "\nCapBnd:", cb, sizeof cb);
    field(status, "\nCapAmb:", ca, sizeof ca);
    field(status, "\nNoNewPrivs:", nnp, sizeof nnp);
    DIR *d = opendir("/proc/self/fd");
    int self = d ? dirfd(d) : -1;
    int listed[64], k = 0;
    for (struct dirent *e; d && (e = readdir(d)) && k < 64;) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd != self) listed[k++] = fd;
    }
    if (d) closedir(d);
    for (int i = 0; i < k; i++) /* in order: the kernel lists them so, but be sure */
        for (int j = i + 1; j < k; j++)
            if (listed[j] < listed[i]) { int t = listed[i]; listed[i] = listed[j]; listed[j] = t; }
    for (int i = 0; i < k; i++) snprintf(fds + strlen(fds), sizeof fds - strlen(fds), "%s%d", i ? "," : "", listed[i]);
    const char *lf = getenv("LISTEN_FDS");
    int out = lf && atoi(lf) == 1 ? 3 : 1;
    dprintf(out, "uid=%s gid=%s groups=%s cap=%s,%s,%s,%s,%s nnp=%s fds=%s\n", uid, gid, groups, ci, cp,
            ce, cb, ca, nnp, fds);
    return 0;
}
