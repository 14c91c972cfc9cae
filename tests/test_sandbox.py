"""Hostile notebooks run through the real grading path (`run_notebook`) in the sandboxed launchers.

Each test crafts a small notebook, runs it with `kernel.run_notebook` and a launcher from
`grading.sandbox`, and reads what the kernel could do from a report file it writes into its
own working folder. Tests that need bubblewrap skip without it, unless
MNIST_KIT_REQUIRE_SANDBOX=1 (CI), where they fail instead.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import nbformat
import pytest
from crafted import REPORT  # tests/crafted.py: the report(**facts) cell

from mnist_kit.grading.kernel import kernel_env, run_notebook
from mnist_kit.grading.sandbox import (
    BubblewrapKernel,
    LimitedKernel,
    WeakSandboxWarning,
    best_launcher,
    bubblewrap_problem,
    exit_reason,
    sandbox_processes,
)

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SANDBOX = os.environ.get("MNIST_KIT_REQUIRE_SANDBOX") == "1"


class Recorder:
    """A launcher that remembers the managers it started, around a real one."""

    def __init__(self, launcher):
        self.launcher, self.name, self.managers = launcher, launcher.name, []

    def start(self, workdir, env):
        manager = self.launcher.start(workdir, env)
        self.managers.append(manager)
        return manager

    def stop(self, manager):
        self.launcher.stop(manager)


def host_processes_mentioning(text: str) -> list[int]:
    """Live processes on this machine whose command line contains `text`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                if text in Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(name))
            except OSError:
                continue
    return found


def run(launcher, tmp_path: Path, *cells: str, time_limit: float = 60, after: str = "", env=None):
    """Run `cells` with `launcher`; return (RunLog, the kernel's report, its manager)."""
    work = tmp_path / "work"
    work.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(launcher)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    log = run_notebook(
        nb,
        work,
        time_limit=time_limit,
        before=REPORT,
        after=after,
        after_limit=30,
        launcher=recorder,
        env=env if env is not None else kernel_env(),
    )
    manager = recorder.managers[0]
    assert sandbox_processes(manager) == [], "processes of the kernel outlived stop()"
    assert host_processes_mentioning(manager.connection_file) == [], "kernel copies outlived stop()"
    report = work / "report.json"
    return log, (json.loads(report.read_text()) if report.is_file() else {}), manager


def limited(**limits) -> LimitedKernel:
    return LimitedKernel(warn=False, **limits)


@pytest.fixture
def sandboxed():
    """A factory of BubblewrapKernel launchers; skips (or fails on CI) when bubblewrap is unusable."""
    problem = bubblewrap_problem()
    if problem:
        (pytest.fail if REQUIRE_SANDBOX else pytest.skip)(
            f"bubblewrap cannot be used here: {problem}"
        )
    return BubblewrapKernel


LAUNCHERS = ["bubblewrap", "limited"]


@pytest.fixture(params=LAUNCHERS)
def any_launcher(request):
    """Both launchers in turn: the resource limits must hold in each."""
    if request.param == "limited":
        return limited
    return request.getfixturevalue("sandboxed")


def test_normal_notebook_runs_with_torch_and_mnist(sandboxed, tmp_path, mnist_dir):
    """Does an ordinary notebook import numpy and torch, load MNIST and write into its folder?"""
    env = kernel_env({"MNIST_KIT_DATA": str(mnist_dir), "SECRET_API_TOKEN": "do-not-leak"})
    log, report, _ = run(
        sandboxed(),
        tmp_path,
        "import numpy, torch\nreport(torch=torch.__version__, total=int(torch.ones(3).sum()))",
        "from mnist_kit.data import load_mnist\n(x, y), (xt, yt) = load_mnist()\n"
        "report(train=list(x.shape), test=len(xt), labels=sorted(set(y.tolist())))",
        "report(uid=_os.getuid(), env=sorted(_os.environ), cwd=_os.getcwd())",
        env=env,
    )
    assert log.errors == [] and not log.kernel_died
    assert report["total"] == 3 and report["torch"].startswith("2.")
    assert (
        report["train"] == [60000, 28, 28]
        and report["test"] == 10000
        and report["labels"] == list(range(10))
    )
    assert report["cwd"] == str((tmp_path / "work").resolve())
    assert "SECRET_API_TOKEN" not in report["env"], "the grader's secrets leaked into the kernel"
    if os.geteuid() == 0:
        assert report["uid"] != 0, "a root grader must run the kernel as an unprivileged user"


NETWORK_CELL = """
import socket
outcomes = {}
for host in HOSTS:
    try:
        socket.create_connection((host, PORT), timeout=3).close()
        outcomes[host] = "connected"
    except OSError as exc:
        outcomes[host] = type(exc).__name__ + ": " + str(exc)
try:
    socket.getaddrinfo("pypi.org", 443)
    outcomes["dns"] = "resolved"
except OSError as exc:
    outcomes["dns"] = type(exc).__name__ + ": " + str(exc)
report(**outcomes)
"""


def _host_address() -> str | None:
    """This machine's own non-loopback IPv4 address, if it has one."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # UDP: picks a route, sends nothing
        return probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()


def test_network_is_blocked_even_to_the_grader(sandboxed, tmp_path):
    """Can a sandboxed notebook reach a port the grader listens on, or resolve a name? (It must not.)"""
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    hosts = ["127.0.0.1"] + ([address] if (address := _host_address()) else [])
    cell = f"HOSTS, PORT = {hosts!r}, {port}\n" + NETWORK_CELL
    try:
        _, control, _ = run(limited(), tmp_path / "control", cell)
        assert control["127.0.0.1"] == "connected", (
            "without the sandbox the listener should be reachable"
        )
        log, report, _ = run(sandboxed(), tmp_path / "sandboxed", cell)
    finally:
        listener.close()
    assert log.errors == []
    for host in hosts:
        assert report[host] != "connected", f"the sandbox reached the grader at {host}:{port}"
    assert report["dns"].startswith("gaierror"), report["dns"]


FILES_CELL = """
seen = {}
for path in READ:
    try:
        open(path).read()
        seen[path] = "read"
    except OSError as exc:
        seen[path] = type(exc).__name__
for path in WRITE:
    try:
        with open(path, "w") as handle:
            handle.write("pwned")
        seen[path] = "written"
    except OSError as exc:
        seen[path] = type(exc).__name__
report(seen=seen, root=sorted(_os.listdir("/")))
"""


def test_files_outside_the_scratch_folder_are_out_of_reach(sandboxed, tmp_path):
    """Can a notebook read hidden tests or a secret, or write outside its folder? (It must not.)"""
    secret = tmp_path / "secret.txt"
    secret.write_text("the answer key")
    hidden = ROOT / "autograder" / "conftest.py"
    assert hidden.is_file()
    outside = [tmp_path / "pwned.txt", ROOT / "pwned.txt", Path("/tmp/mnist-kit-pwned.txt")]
    read = [str(secret), str(hidden), str(Path(__file__).resolve())]
    write = [str(p) for p in outside] + ["/usr/pwned.txt", "in-my-folder.txt"]
    control_cell = f"READ, WRITE = {read!r}, {[str(outside[0])]!r}\n" + FILES_CELL
    _, control, _ = run(limited(), tmp_path / "control", control_cell)
    assert control["seen"] == {**dict.fromkeys(read, "read"), str(outside[0]): "written"}, (
        "control run"
    )
    outside[0].unlink()

    cell = f"READ, WRITE = {read!r}, {write!r}\n" + FILES_CELL

    log, report, _ = run(sandboxed(), tmp_path / "sandboxed", cell)
    assert log.errors == []
    seen = report["seen"]
    for path in read:
        assert seen[path] == "FileNotFoundError", f"{path}: {seen[path]}"
    for path in outside:
        assert not path.exists(), f"the sandbox wrote {path}"
    assert seen["/usr/pwned.txt"] in ("OSError", "PermissionError")  # read-only file system
    assert seen["in-my-folder.txt"] == "written"
    assert (tmp_path / "sandboxed" / "work" / "in-my-folder.txt").read_text() == "pwned"
    assert "home" not in report["root"] and "solutions" not in report["root"]


def test_memory_bomb_is_stopped_and_the_kernel_lives_on(any_launcher, tmp_path):
    """Do a huge allocation and a growing list end in MemoryError under the cap, with the kernel alive?"""
    log, report, _ = run(
        any_launcher(memory_mb=1024),
        tmp_path,
        "x = bytearray(10**10)",
        "hog = []\nwhile True:\n    hog.append(b'1' * 10**7)",
        "del hog\nreport(alive=True)",
    )
    assert not log.kernel_died
    assert log.errors[0] == "cell 1: MemoryError:", log.errors
    assert log.errors[1].startswith("cell 2: MemoryError"), log.errors
    assert report == {"alive": True}


FORK_CELLS = (
    """
import os, time
children, error = [], None
try:
    for _ in range(10_000):
        pid = os.fork()
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    error = type(exc).__name__
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
report(forked=len(children), fork_error=error)
""",
    """
import subprocess
started, error = [], None
try:
    for _ in range(10_000):
        started.append(subprocess.Popen(["sleep", "987.654"]))
except OSError as exc:
    error = type(exc).__name__
report(spawned=len(started), spawn_error=error)
""",
)


def test_fork_bomb_is_capped_and_nothing_survives(sandboxed, tmp_path):
    """Does the process cap stop fork and spawn loops, and does stop() remove the children left running?"""
    log, report, _ = run(sandboxed(max_processes=40), tmp_path, *FORK_CELLS)
    assert log.errors == [] and not log.kernel_died
    assert report["fork_error"] == "BlockingIOError" and 0 < report["forked"] < 40
    assert report["spawn_error"] == "BlockingIOError" and 0 < report["spawned"] < 40
    assert host_processes_mentioning("987.654") == [], "spawned children outlived stop()"


def test_fork_bomb_is_capped_without_bubblewrap(tmp_path):
    """Does LimitedKernel cap forks too (possible only when the grader is not root)?"""
    if os.geteuid() == 0:
        pytest.skip("RLIMIT_NPROC does not apply to root; LimitedKernel warns about this")
    log, report, _ = run(limited(max_processes=40), tmp_path, *FORK_CELLS)
    assert report["fork_error"] == "BlockingIOError" and report["forked"] < 40
    assert host_processes_mentioning("987.654") == []


def test_busy_loop_is_killed_at_the_cpu_limit(any_launcher, tmp_path):
    """Is `while True: pass` killed by the CPU limit, and does the reason name it?"""
    log, report, manager = run(
        any_launcher(cpu_seconds=4),
        tmp_path,
        "report(started=True)",
        "while True:\n    pass",
        time_limit=300,
    )
    assert log.kernel_died and not log.timed_out and report == {"started": True}
    assert "CPU time limit (4 s" in exit_reason(manager)


def test_output_file_flood_is_capped(any_launcher, tmp_path):
    """Does writing a 20 MB file stop at a 1 MB file-size limit with an error the grader sees?"""
    log, _, _ = run(
        any_launcher(max_file_mb=1),
        tmp_path,
        "with open('flood.txt', 'w') as handle:\n    for _ in range(20):\n        handle.write('x' * 2**20)",
    )
    assert not log.kernel_died
    assert log.errors and "File too large" in log.errors[0], log.errors
    assert (tmp_path / "work" / "flood.txt").stat().st_size <= 2**20


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("import os\nos._exit(3)", "exited with status 3"),
        ("import ctypes\nctypes.string_at(0)", "segmentation fault"),
    ],
    ids=["os-exit", "segfault"],
)
def test_kernel_death_is_reported_not_hung(any_launcher, tmp_path, cell, reason):
    """When a notebook kills its kernel, does the run end at once with a reason?"""
    log, report, manager = run(
        any_launcher(), tmp_path, "report(before=True)", cell, "report(after=True)"
    )
    assert log.kernel_died and report == {"before": True}
    assert log.seconds < 30
    assert reason in exit_reason(manager)


def test_wall_clock_timeout_interrupts_the_sandboxed_kernel(sandboxed, tmp_path):
    """At the engine's time limit, is the sandboxed kernel interrupted so the grader's code still runs?"""
    log, report, manager = run(
        sandboxed(),
        tmp_path,
        "report(started=True)",
        "while True:\n    pass",
        "report(never=True)",
        time_limit=10,
        after="report(after=True)",
    )
    assert log.timed_out and not log.kernel_died and log.finish_error is None
    assert report == {"started": True, "after": True}
    assert exit_reason(manager) is None


def test_limited_kernel_warns_that_isolation_is_weaker(tmp_path):
    """Does LimitedKernel say plainly that network and files are not fenced?"""
    with pytest.warns(WeakSandboxWarning, match="CAN use the network"):
        log, report, _ = run(LimitedKernel(), tmp_path, "report(ran=True)")
    assert report == {"ran": True}


def test_best_launcher_picks_what_works(tmp_path):
    """Does best_launcher choose bubblewrap when it works and fall back (warning) when it is missing?"""
    fallback = best_launcher(memory_mb=2048, bwrap=str(tmp_path / "no-bwrap"))
    assert isinstance(fallback, LimitedKernel) and fallback.limits.memory_mb == 2048
    if bubblewrap_problem() is None:
        assert isinstance(best_launcher(), BubblewrapKernel)
    elif REQUIRE_SANDBOX:
        pytest.fail(f"bubblewrap cannot be used here: {bubblewrap_problem()}")


def test_limits_must_be_positive():
    """Is a nonsensical limit refused with a message naming it?"""
    with pytest.raises(ValueError, match="memory_mb"):
        LimitedKernel(memory_mb=0)
