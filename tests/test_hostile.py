"""Does grading survive hostile and broken submissions, one submission at a time?

Each test grades a real crafted submission through `Grader` (the assignment-1 solution plus a
hostile cell, or a broken file from tests/files/broken/) and checks the row a teacher gets:
points, notes, and what the notebook could reach, which it records in `report.json` in its
working folder (kept with `keep=`). Tests that need bubblewrap skip without it, unless
MNIST_KIT_REQUIRE_SANDBOX=1, where they fail instead.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest
from crafted import REPORT  # tests/crafted.py: the report(**facts) cell

from mnist_kit.grading.declare import Fail
from mnist_kit.grading.engine import Grader
from mnist_kit.grading.job import kept_name
from mnist_kit.grading.sandbox import PACKAGE_DIR, bubblewrap_problem

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "01-data" / "01-data.ipynb"
REQUIRE_SANDBOX = os.environ.get("MNIST_KIT_REQUIRE_SANDBOX") == "1"


_GRADERS: dict[tuple, Grader] = {}


@pytest.fixture(scope="module")
def keep(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kept")


@pytest.fixture(scope="module")
def grader(keep):
    """A factory of bubblewrap graders for 01-data (one per time limit), skipping without bubblewrap."""
    problem = bubblewrap_problem()
    if problem is not None:
        if REQUIRE_SANDBOX:
            pytest.fail(f"bubblewrap cannot be used here: {problem}")
        pytest.skip(f"bubblewrap cannot be used here: {problem}")

    def make(time_limit: float = 30, assignment: str = "01-data") -> Grader:
        key = (assignment, time_limit)
        if key not in _GRADERS:
            _GRADERS[key] = Grader(
                assignment, time_limit=time_limit, keep=keep, sandbox="bubblewrap"
            )
        return _GRADERS[key]

    return make


def crafted(folder: Path, *cells: str, at_end: bool = True, name: str = "submission") -> Path:
    """The 01-data solution with `cells` added at the end (or the start), after a report() cell."""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    extra = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells = [nbformat.v4.new_code_cell(REPORT)] + (
        [*nb.cells, *extra] if at_end else [*extra, *nb.cells]
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


def kernel_report(keep: Path, path: Path) -> dict:
    """What the notebook recorded with report(), from the kept scratch folder."""
    report = keep / kept_name(path) / "work" / "report.json"
    return json.loads(report.read_text()) if report.is_file() else {}


def passed(result) -> set[str]:
    return {t.name for t in result.tests if t.passed}


def processes_of_uid(uid: int) -> list[int]:
    """Live (non-zombie) processes on this machine run by `uid`, from /proc."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            state = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(name))
    return found


def processes_mentioning(text: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if text.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    found.append(int(name))
            except OSError:
                continue
    return found


# --- runs forever ---------------------------------------------------------------------------


def test_a_busy_loop_is_stopped_and_the_rest_graded(grader, tmp_path):
    """Is `while True: pass` interrupted at the wall-clock limit, noted, and the functions still graded?"""
    result = grader(8).grade(crafted(tmp_path, "while True:\n    pass"))
    assert result.error is None
    assert result.notes[0] == "timed out after 8 s; graded on what finished"
    assert result.score == result.max_score
    assert result.seconds < 45


def test_a_notebook_that_ignores_the_interrupt_is_killed(grader, tmp_path):
    """Is a loop that ignores SIGINT killed soon after the limit, with zero points and a reason?"""
    cell = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    result = grader(8).grade(crafted(tmp_path, cell))
    assert result.error is None and result.score == 0
    assert "timed out after 8 s; the notebook ignored the interrupt" in result.notes[0]
    assert all("nothing to grade" in t.message for t in result.tests)
    assert result.seconds < 60


def test_kernel_start_up_is_not_the_students_time(grader, tmp_path):
    """Does a notebook that needs 5 of its 6 seconds finish, although the grader's Keras set-up takes longer?"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(5)")])
    path = tmp_path / "slow-start.ipynb"
    nbformat.write(nb, str(path))
    keras_grader = grader(6, "02-keras-mlp")
    result = keras_grader.grade(path)
    run = json.loads((keras_grader.keep / kept_name(path) / "run.json").read_text())
    assert run["cell_seconds"]["before"] > 1  # importing and seeding Keras took real time...
    assert not run["timed_out"] and run["finished"]  # ...that the notebook's 6 s did not pay for
    assert not any("timed out" in note for note in result.notes)


# --- memory ---------------------------------------------------------------------------------


def test_unbounded_memory_is_capped_and_noted(grader, tmp_path, keep):
    """Does allocating without bound stop at the memory cap, say so, and leave the functions graded?"""
    cell = (
        "import numpy as np\nhog = []\nwhile True:\n"
        "    hog.append(np.empty(10**8, dtype=np.uint8))\n"
        "    report(allocated_mb=len(hog) * 100)"
    )
    path = crafted(tmp_path, cell)
    result = grader().grade(path)
    assert result.error is None
    assert "ran out of memory (limit 4096 MB)" in result.notes
    assert any("MemoryError" in note for note in result.notes)
    assert result.score == result.max_score
    assert 2000 <= kernel_report(keep, path)["allocated_mb"] <= 4096


# --- processes ------------------------------------------------------------------------------

FORKS = """
import multiprocessing, os, subprocess, time
subprocess.Popen(["sleep", "987654"])
multiprocessing.Process(target=time.sleep, args=(987654,)).start()
if os.fork() == 0:  # a double-forked daemon
    os.setsid()
    if os.fork() == 0:
        time.sleep(987654)
    os._exit(0)
forks = 0
try:
    while forks < 5000:  # a fork bomb of sleepers
        if os.fork() == 0:
            time.sleep(987654)
            os._exit(0)
        forks += 1
except OSError as exc:
    report(uid=os.getuid(), forks=forks, error=type(exc).__name__)
"""


def test_fork_bombs_are_capped_and_nothing_survives_grading(grader, tmp_path, keep):
    """Is a fork bomb capped, and does no process of the submission survive grading (a /proc scan)?"""
    path = crafted(tmp_path, FORKS)
    result = grader().grade(path)
    report = kernel_report(keep, path)
    assert report["error"] == "BlockingIOError" and 50 < report["forks"] < 256
    assert result.error is None and result.score == result.max_score
    assert processes_of_uid(report["uid"]) == []
    assert processes_mentioning("987654") == []


LEFTOVERS = """
import multiprocessing, os, subprocess, time
subprocess.Popen(["sleep", "987655"])
multiprocessing.Process(target=time.sleep, args=(987655,)).start()
if os.fork() == 0:  # a double-forked daemon in a session of its own
    os.setsid()
    if os.fork() == 0:
        with open("daemon.pid", "w") as handle:
            handle.write(str(os.getpid()))
        time.sleep(987655)
    os._exit(0)
time.sleep(0.5)
report(marker=os.environ["MNIST_KIT_KERNEL_ID"], daemon=int(open("daemon.pid").read()))
"""


def test_without_bubblewrap_leftover_processes_are_still_ended(tmp_path, keep):
    """With resource limits only (no pid namespace), do children and a setsid daemon end with grading?"""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limited = Grader("01-data", time_limit=30, keep=keep, sandbox="limited")
        path = crafted(tmp_path, LEFTOVERS)
        result = limited.grade(path)
    report = kernel_report(keep, path)
    assert result.score == result.max_score
    assert report["daemon"] > 0 and not alive(report["daemon"])
    assert processes_mentioning("987655") == []
    assert processes_with_env(f"MNIST_KIT_KERNEL_ID={report['marker']}") == []


def alive(pid: int) -> bool:
    """Is `pid` a running process (not gone, not a zombie)?"""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def processes_with_env(entry: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if entry.encode() in Path(f"/proc/{name}/environ").read_bytes().split(b"\0"):
                    found.append(int(name))
            except OSError:
                continue
    return found


# --- exits and crashes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("import os\nos._exit(3)", "the kernel exited with status 3"),
        ("import ctypes\nctypes.string_at(0)", "segmentation fault"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed (SIGKILL)"),
    ],
    ids=["os-exit", "segfault", "sigkill"],
)
def test_a_dead_kernel_gives_zero_points_and_says_why(grader, tmp_path, cell, reason):
    """When the notebook kills its kernel, is every test zero with a note naming what happened?"""
    result = grader().grade(crafted(tmp_path, cell, at_end=False))
    assert result.error is None and result.score == 0
    assert result.notes[0].startswith("the kernel died (") and reason in result.notes[0]
    assert all("nothing to grade: the kernel died" in t.message for t in result.tests)


@pytest.mark.parametrize("cell", ["import sys\nsys.exit()", "raise SystemExit(1)"])
def test_sys_exit_is_noted_and_the_notebook_goes_on(grader, tmp_path, cell):
    """Does sys.exit() in a cell (which Jupyter ignores) leave a note and full points?"""
    result = grader().grade(crafted(tmp_path, cell, at_end=False))
    assert result.score == result.max_score
    assert any("cell 2: SystemExit: the notebook called sys.exit()" in n for n in result.notes)


# --- output floods --------------------------------------------------------------------------


class PeakMemory:
    """The largest resident size of this process while the block runs, sampled every 20 ms."""

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


@pytest.mark.parametrize(
    ("cell", "timed_out"),
    [
        ("for _ in range(5000):\n    print('x' * 100_000)", False),  # 500 MB
        ("while True:\n    print('x' * 100_000)", True),
    ],
    ids=["500MB", "forever"],
)
def test_an_output_flood_is_cut_and_the_grader_stays_small(grader, tmp_path, cell, timed_out):
    """Does a flood of prints get cut at 20 MB with a note, while the grader's memory stays bounded?"""
    with PeakMemory() as memory:
        result = grader(10).grade(crafted(tmp_path, cell))
    assert memory.peak - memory.start < 300 * 2**20
    assert "output was cut at 20 MB (the notebook printed more)" in result.notes
    assert result.score == result.max_score
    assert any(n.startswith("timed out") for n in result.notes) == timed_out


def test_a_flood_around_the_kernels_cap_still_leaves_the_grader_small(grader, tmp_path):
    """With the kernel-side output cap removed, do zmq's message limits keep the grader's memory bounded?"""
    cell = "import sys\ndel sys.stdout.write\nwhile True:\n    print('x' * 100_000)"
    with PeakMemory() as memory:
        result = grader(10).grade(crafted(tmp_path, cell))
    assert memory.peak - memory.start < 300 * 2**20
    assert result.error is None
    # The kernel's own unsent output grows until it hits its memory cap or the time limit.
    assert result.notes[0].startswith(("the kernel died", "timed out")), result.notes


# --- network and files ----------------------------------------------------------------------


def test_the_network_is_unreachable(grader, tmp_path, keep):
    """Can the notebook reach neither the internet nor a port the grader's machine listens on?"""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    socket.create_connection(("127.0.0.1", port), timeout=3).close()  # reachable from outside
    server.accept()[0].close()
    cell = f"""
import socket
def attempt(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__
report(internet=attempt("1.1.1.1", 53), grader=attempt("127.0.0.1", {port}))
"""
    path = crafted(tmp_path, cell)
    result = grader().grade(path)
    with pytest.raises(TimeoutError):
        server.accept()
    server.close()
    report = kernel_report(keep, path)
    assert report["internet"] != "connected" and report["grader"] != "connected", report
    assert result.score == result.max_score


def test_hidden_files_cannot_be_read_and_nothing_outside_can_be_written(grader, tmp_path, keep):
    """Can the notebook read the autograder, solutions, the gradebook, another submission or /work? Write outside?"""
    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_text("submission,score\nalice,10\n")
    other = crafted(tmp_path / "bob", "x = 1", name="bob")
    secrets = [
        ROOT / "autograder" / "test_01_data.py",
        ROOT / "autograder" / "conftest.py",
        SOLUTION,
        gradebook,
        other,
        ROOT / "README.md",
        ROOT / "nbgrader_config.py",
    ]
    targets = [
        ROOT / "hostile-write.txt",
        tmp_path / "hostile-write.txt",
        PACKAGE_DIR / "hostile_write.py",
        Path(os.environ["MNIST_KIT_DATA"]) / "hostile-write.txt",
    ]
    assert all(p.is_file() for p in secrets)  # the grader itself can read each one
    cell = f"""
import os
read, wrote = [], []
for path in {[str(p) for p in secrets]!r}:
    try:
        with open(path, "rb") as handle:
            handle.read(10)
        read.append(path)
    except OSError:
        pass
for path in {[str(p) for p in targets]!r} + ["../plan/plan.json", "/etc/hostile"]:
    try:
        with open(path, "a") as handle:
            handle.write("x")
        wrote.append(path)
    except OSError:
        pass
report(read=read, wrote=wrote, listing=sorted(os.listdir("..")))
"""
    path = crafted(tmp_path / "alice", cell, name="alice")
    result = grader().grade(path)
    report = kernel_report(keep, path)
    assert report["read"] == [] and report["wrote"] == [], report
    assert set(report["listing"]) <= {"work", "plan", "out"}, report  # not run.json, kernel logs
    assert not any(p.exists() for p in targets)
    assert result.score == result.max_score


# --- tampering ------------------------------------------------------------------------------


def _solution_cells(change) -> nbformat.NotebookNode:
    nb = nbformat.read(str(SOLUTION), as_version=4)
    change(nb)
    return nb


def _graded(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_the_untouched_solution_gets_no_tampering_note(grader, tmp_path):
    """Does the teacher's own notebook grade in full with no notes (the control for the tests below)?"""
    path = tmp_path / "solution.ipynb"
    path.write_text(SOLUTION.read_text())
    result = grader().grade(path)
    assert result.score == result.max_score and result.notes == []


def test_changed_or_deleted_test_cells_are_noted_and_replaced(grader, tmp_path):
    """Are edited or deleted graded cells noted, with the grader's own tests used?"""

    def tamper(nb):
        _graded(nb, "q1_scale").source = "print('all tests passed')"
        nb.cells.remove(_graded(nb, "q1_split"))

    path = tmp_path / "tampered.ipynb"
    nbformat.write(_solution_cells(tamper), str(path))
    result = grader().grade(path)
    assert result.score == result.max_score
    assert (
        "graded test cells were changed or deleted (q1_scale, q1_split): "
        "the grader's own tests were used" in result.notes
    )


PATCHES = """
def scale_images(images):  # wrong: not divided by 255
    return images.astype("float32")

import builtins, numpy, numpy.testing
import mnist_kit.grading.declare as declare
import mnist_kit.grading.expectations as expectations
numpy.array_equal = numpy.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = numpy.testing.assert_array_equal = lambda *a, **k: None
declare.expect = expectations.expect = lambda *a, **k: None
declare.Fail = type("Never", (Exception,), {})
import sys, types, torch
torch.equal = torch.allclose = lambda *a, **k: True
sys.modules["keras"] = types.SimpleNamespace(Model=object)  # a fake Keras for the grader's code
builtins.assert_ = builtins.AssertionError = Warning
"""


def test_monkeypatching_in_the_kernel_cannot_change_the_grade(grader, tmp_path):
    """Do patched numpy, assert and check helpers in the kernel leave the grader's tests intact?"""
    real = (np.array_equal, np.allclose)
    result = grader().grade(crafted(tmp_path, PATCHES))
    failed = {t.name for t in result.tests if not t.passed}
    assert failed and all("scale" in name for name in failed), failed
    assert result.score == result.max_score - sum(
        t.max_points for t in result.tests if not t.passed
    )
    assert (np.array_equal, np.allclose) == real and np.array_equal([1], [2]) is False


FAKE_OUTPUTS = """
import json, os
out = os.path.abspath("../out")
keys = {keys!r}
for key in keys:
    os.symlink({secret!r}, os.path.join(out, key + ".out.npz"))
with open(os.path.join(out, "manifest.json"), "w") as handle:
    json.dump({{"models": {{}}, "probes": {{k: {{"error": None, "structure": "array"}} for k in keys}}}}, handle)
os._exit(0)
"""


def test_a_fake_manifest_left_by_a_dead_kernel_is_not_graded(grader, tmp_path):
    """Are a fake out/manifest.json and symlinks written before the kernel exits ignored?"""
    secret = tmp_path / "secret.npz"
    np.savez(secret, out=np.zeros(3))
    keys = [probe.key for probe in grader().probes]
    path = crafted(tmp_path, FAKE_OUTPUTS.format(keys=keys, secret=str(secret)))
    result = grader().grade(path)
    assert result.score == 0
    assert "the kernel exited with status 0" in result.notes[0]
    assert all("nothing to grade" in t.message for t in result.tests)


# --- the grader's side, without a kernel -----------------------------------------------------


def test_symlinks_and_odd_manifests_are_refused_when_loading(tmp_path):
    """Does the grader refuse symlinked outputs and a symlinked manifest instead of following them?"""
    from mnist_kit.grading.declare import Value
    from mnist_kit.grading.submission import Submission

    probe = Value("x_train")
    secret = tmp_path / "secret.npz"
    np.savez(secret, out=np.arange(3))
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{probe.key}.out.npz").symlink_to(secret)
    (out / "manifest.json").write_text(
        json.dumps({"models": {}, "probes": {probe.key: {"error": None, "structure": "array"}}})
    )
    with pytest.raises(Fail, match="symbolic link"):
        Submission(out).call(probe)
    (out / "real.json").write_text((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()
    (out / "manifest.json").symlink_to(out / "real.json")
    assert Submission(out).manifest == {"models": {}, "probes": {}}
    (out / "manifest.json").unlink()
    (out / "manifest.json").write_text("[1, 2, 3]")
    assert Submission(out).manifest == {"models": {}, "probes": {}}


class LookupModel:
    """A Keras-like 'model' that looks images up in a table of (test) images instead of learning."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.inputs = [type("Input", (), {"shape": (None, 28, 28)})()]
        self.trainable_weights = [np.zeros((784, 10))]
        self.table = {
            image.tobytes(): int(label) for image, label in zip(images, labels, strict=True)
        }

    def predict(self, x, batch_size=None, verbose=0):
        found = np.array([self.table.get(image.tobytes(), 0) for image in x])
        return np.eye(10, dtype=np.float32)[found]


def test_a_model_that_memorised_the_test_labels_fails():
    """Does a lookup table of the test labels fail the accuracy check, while an honest model passes?"""
    from mnist_kit.grading.expectations import expect_accuracy
    from mnist_kit.grading.graded_model import GradedModel, mnist_test_set, mnist_train_sample

    test_images, test_labels = mnist_test_set()
    cheat = GradedModel("model", "keras", LookupModel(test_images, test_labels), {})
    with pytest.raises(Fail, match="memorised the test labels"):
        expect_accuracy(cheat, 0.97, "train it")
    assert cheat.test_accuracy == 1.0 and cheat.train_accuracy < 0.2
    train_images, train_labels = mnist_train_sample()
    images = np.concatenate([test_images, train_images])
    honest = GradedModel(
        "model", "keras", LookupModel(images, np.concatenate([test_labels, train_labels])), {}
    )
    expect_accuracy(honest, 0.97, "train it")


# --- not a valid notebook -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty", "the file is empty"),
        ("truncated", "a cut-off or damaged notebook: its JSON breaks off"),
        ("not-utf8", "not UTF-8 text"),
        ("no-cells", "it has no list of cells"),
        ("not-a-notebook", "it has no list of cells"),
        ("nbformat-99", "unsupported notebook format 99"),
    ],
)
def test_a_broken_file_gets_a_row_with_the_reason(grader, broken_notebook, name, reason):
    """Is each broken file one row, zero points, and a reason the teacher understands?"""
    result = grader().grade(broken_notebook(name))
    assert result.error is not None and result.error.startswith("not graded: ")
    assert reason in result.error
    assert result.score == 0 and all(reason in t.message for t in result.tests)


def test_a_huge_file_is_refused_before_parsing(grader, tmp_path, monkeypatch):
    """Is a 200 MB notebook refused by its size, without being read?"""
    path = tmp_path / "huge.ipynb"
    with open(path, "wb") as handle:
        handle.truncate(200 * 2**20)  # sparse: no disk space, created at once
    read_bytes = Path.read_bytes

    def refuse_the_huge_one(self):
        assert self != path, "the 200 MB file was read"
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse_the_huge_one)
    result = grader().grade(path)
    assert "the file is 200 MB; notebooks over 50 MB are not graded" in result.error
    assert result.score == 0


def test_an_nbformat_3_notebook_is_converted_and_graded(grader, tmp_path):
    """Is an old (v3) notebook converted as Jupyter would, and graded in full?"""
    path = tmp_path / "old.ipynb"
    v3 = nbformat.convert(nbformat.read(str(SOLUTION), as_version=4), 3)
    nbformat.write(v3, str(path), version=3)
    assert json.loads(path.read_text())["nbformat"] == 3
    result = grader().grade(path)
    assert result.error is None and result.score == result.max_score


def test_missing_keys_and_duplicate_ids_are_repaired_or_noted(grader, tmp_path):
    """Are cells without metadata or source repaired, and duplicate ids and grade_ids noted, not fatal?"""
    data = json.loads(SOLUTION.read_text())
    for cell in data["cells"]:
        cell["id"] = "same"
        if not cell["metadata"].get("nbgrader"):
            del cell["metadata"]
    data["cells"].append({"cell_type": "code"})  # no source, outputs or metadata
    duplicate = json.loads(json.dumps(_graded_dict(data, "q1_show")))
    data["cells"].append(duplicate)  # a second cell with the grade_id q1_show
    path = tmp_path / "repaired.ipynb"
    path.write_text(json.dumps(data))
    result = grader().grade(path)
    assert result.error is None and result.score == result.max_score
    assert any("changed or deleted (q1_show)" in note for note in result.notes), result.notes


def _graded_dict(data: dict, grade_id: str) -> dict:
    return next(
        c
        for c in data["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
    )
