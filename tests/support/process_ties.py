"""Ties a test's child processes to it (Python side; tests/support/subprocess.cc is the C++ one):
a child started with dies_with_this_process() gets SIGKILL when the thread that started it dies,
even by SIGKILL, so a killed test leaves no server behind."""

import ctypes
import os
import signal

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def dies_with_this_process():
    """A Popen preexec_fn that makes the child die with the thread that starts it."""
    parent = os.getpid()

    def preexec():
        if _LIBC.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL)) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != parent:  # it died before prctl took effect
            os._exit(127)

    return preexec
