"""Layer 2, exec: everything that acts with root's authority on behalf of one start.

Planning a process from a unit (``plan``: argv, environment, credentials, stdio — pure),
resolving users, the spawn core (``spec`` and the C extension: vfork, fds to 3…,
setgroups → setgid → setuid, exec), binding listeners (``bind``), creating the service's
directories (``directories``), testing Condition*= (``conditions``) and reading PID files
(``pidfile``). Paths a service may control are handled symlink-safely: open with
O_NOFOLLOW, fstat the opened fd, act on the fd.

May import ``core`` and ``units``; never the event loop's objects (``runtime``) or
anything above. Entry points take a plan and the per-start fds and substitutions, and
return pids and errors, so this layer could become a separate, small privileged process.
"""
