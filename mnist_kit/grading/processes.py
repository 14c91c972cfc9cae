"""Find and end processes: what a sandbox, a kernel or a grading worker left running (psutil).

The sandbox finds a kernel's processes by pid namespace, session or an environment marker
(sandbox/), a grading worker kills everything below it after each submission (batch.py),
and the kernel runner kills a kernel that ignored its interrupt (kernel.py).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil

__all__ = [
    "live_pids",
    "pid_namespace",
    "has_env",
    "threads_of_user",
    "uids_in_use",
    "descendants",
    "kill",
    "kill_until_gone",
    "kill_descendants",
]


def live_pids() -> list[int]:
    """Pids of every running process (zombies left out)."""
    return [
        p.pid for p in psutil.process_iter(["status"]) if p.info["status"] != psutil.STATUS_ZOMBIE
    ]


def pid_namespace(pid: int) -> int:
    """The inode of process `pid`'s pid namespace (Linux); OSError when it cannot be read."""
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def has_env(pid: int, name: str, value: str | None) -> bool:
    """Does process `pid` carry `name=value` in its environment? (False when it cannot be read.)"""
    if not value:
        return False
    try:
        return psutil.Process(pid).environ().get(name) == value
    except (psutil.Error, OSError):
        return False


def threads_of_user(uid: int) -> int:
    """How many processes and threads `uid` runs now (RLIMIT_NPROC counts them all)."""
    total = 0
    for process in psutil.process_iter(["uids", "num_threads"]):
        uids = process.info["uids"]
        if uids is not None and uids.real == uid:
            total += process.info["num_threads"] or 1
    return total


def uids_in_use() -> set[int]:
    """Every uid a running process has (real, effective or saved)."""
    used: set[int] = set()
    for process in psutil.process_iter(["uids"]):
        if process.info["uids"] is not None:
            used.update(process.info["uids"])
    return used


def descendants(root: int) -> list[int]:
    """Every live process below `root` (zombies left out); [] when `root` is gone."""
    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def kill(pid: int) -> None:
    """SIGKILL process `pid`, if it still exists."""
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def kill_until_gone(find: Callable[[], list[int]], seconds: float = 5.0) -> list[int]:
    """SIGKILL what `find()` returns until nothing is left or `seconds` pass; return what is left."""
    deadline = time.monotonic() + seconds
    while (pids := find()) and time.monotonic() < deadline:
        for pid in pids:
            kill(pid)
        time.sleep(0.05)
    return pids


def kill_descendants() -> None:
    """SIGKILL every process below this one, then reap them (for a "child subreaper")."""
    for pid in descendants(os.getpid()):
        kill(pid)
    for _ in range(50):
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if not descendants(os.getpid()):
                break
            time.sleep(0.02)
