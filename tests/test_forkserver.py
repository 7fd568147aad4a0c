"""certsmooth.forkserver: a job run through the warm server is the plain run (output, exit
status, signals, fresh library code), and a job it cannot serve runs in its own process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from certsmooth import forkserver

ROOT = Path(__file__).resolve().parents[1]
THREADS = {k: "1" for k in forkserver.AT_START if k.endswith("_THREADS")}  # what Snakemake sets for 1 thread


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """A copy of the library that a test may edit while the server runs."""
    root = tmp_path_factory.mktemp("lib")
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "workflow" / "schemas", root / "workflow" / "schemas")  # the params schema
    return root / "src"


def _start(library: Path) -> tuple[subprocess.Popen, str]:
    """A server importing ``library``, once its socket is bound (a job that comes earlier
    finds no server and runs itself, as designed; the tests of served jobs need the server)."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(library)
    try:
        proc, path = forkserver.start(sys.executable, 1)
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.update(PYTHONPATH=old)
    t0 = time.monotonic()
    while not os.path.exists(path):
        assert proc.poll() is None and time.monotonic() - t0 < 120, "the fork server did not start"
        time.sleep(0.05)
    return proc, path


@pytest.fixture(scope="module")
def server(library):
    proc, path = _start(library)
    yield proc, path
    forkserver.stop(proc, path)
    assert not os.path.exists(os.path.dirname(path))


def _env(library: Path, path: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CERTSMOOTH_IMPORT_TRACE"}
    return {**env, "PYTHONPATH": str(library), **THREADS, "CERTSMOOTH_FORKSERVER": path, **extra}


def _traced(tmp_path: Path, library: Path, path: str, args: list[str], **extra) -> tuple[subprocess.Popen, dict]:
    """Run ``python -m certsmooth args``; (the finished process, the import trace of the
    process that ran the command: its pid and certsmooth modules)."""
    trace = tmp_path / "trace"
    trace.mkdir()
    env = _env(library, path, CERTSMOOTH_IMPORT_TRACE=str(trace), **extra)
    proc = subprocess.run([sys.executable, "-m", "certsmooth", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    (record,) = [json.loads(p.read_text()) for p in trace.glob("*.json")]
    return proc, record


def test_a_command_through_the_server_is_the_plain_command(server, library, tmp_path):
    _, path = server
    for params, code in ((ROOT / "params.yaml", 0), (tmp_path / "missing.yaml", 2)):
        plain = subprocess.run([sys.executable, "-m", "certsmooth", "validate", str(params)],
                               env=_env(library, "off"), capture_output=True, text=True, timeout=300)  # fmt: skip
        served = subprocess.run([sys.executable, "-m", "certsmooth", "validate", str(params)],
                                env=_env(library, path), capture_output=True, text=True, timeout=300)  # fmt: skip
        assert (served.returncode, served.stdout, served.stderr) == (plain.returncode, plain.stdout, plain.stderr)
        assert served.returncode == code


def test_the_server_runs_the_job_in_a_fork_with_the_jobs_directory(server, library, tmp_path):
    _, path = server
    proc, record = _traced(tmp_path, library, path, ["validate", str(ROOT / "params.yaml")])
    assert proc.returncode == 0, proc.stderr
    assert record["ppid"] != os.getpid()  # a worker of the server, not the job's own interpreter
    assert record["cwd"] == str(tmp_path) and record["argv"] == ["validate", str(ROOT / "params.yaml")]
    assert record["torch"] is True  # preloaded: the point of the server
    assert "CERTSMOOTH_FORKSERVER" not in record["environ"]


@pytest.mark.parametrize("extra", [{"OMP_NUM_THREADS": "2"}, {"MALLOC_TRIM_THRESHOLD_": "0"}])
def test_a_job_with_other_start_up_settings_runs_in_its_own_process(server, library, tmp_path, extra):
    _, path = server
    proc, record = _traced(tmp_path, library, path, ["validate", str(ROOT / "params.yaml")], **extra)
    assert proc.returncode == 0, proc.stderr
    assert record["ppid"] == os.getpid() and record["torch"] is False  # the job's own interpreter


def test_no_server_at_the_socket_the_job_runs_itself(library, tmp_path):
    proc, record = _traced(tmp_path, library, str(tmp_path / "no-such-socket"), ["validate", str(ROOT / "params.yaml")])
    assert proc.returncode == 0 and "valid" in proc.stdout
    assert record["ppid"] == os.getpid()


def test_each_job_imports_the_library_as_it_is_on_disk(server, library, tmp_path):
    """The server imports no certsmooth module: an edit during a run reaches the next job."""
    _, path = server
    step = library / "certsmooth" / "steps" / "validate.py"
    text = step.read_text()
    old = 'print(f"{params}: valid ('
    assert old in text
    try:
        step.write_text(text.replace(old, 'print(f"{params}: EDITED ('))
        proc = subprocess.run([sys.executable, "-m", "certsmooth", "validate", str(ROOT / "params.yaml")],
                              env=_env(library, path), capture_output=True, text=True, timeout=300)  # fmt: skip
        assert "EDITED" in proc.stdout, proc.stderr
    finally:
        step.write_text(text)


def _worker_of(server_pid: int, job: int) -> int | None:
    """The pid of ``job``'s worker: a child of a supervisor (a child of the server) whose
    stderr is the job's."""
    stderr = os.readlink(f"/proc/{job}/fd/2")
    for sup in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
        for kid in Path(f"/proc/{sup}/task/{sup}/children").read_text().split():
            try:
                if os.readlink(f"/proc/{kid}/fd/2") == stderr:
                    return int(kid)
            except OSError:
                continue
    return None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _long_job(library: Path, path: str) -> subprocess.Popen:
    """A served job that runs for minutes (a benchmark)."""
    proc = subprocess.Popen([sys.executable, "-m", "certsmooth", "bench", "noise", "--repeats", "1000"],
                            env=_env(library, path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_job_reaches_its_worker_and_the_job_dies_of_it(server, library, sig):
    server_proc, path = server
    proc = _long_job(library, path)
    worker = _wait_for_worker(server_proc.pid, proc)
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    assert code == -sig, proc.stderr.read()
    assert _gone(worker), f"worker {worker} still running"


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """A server whose workers are slow to get ready: a copy of the library that sleeps a
    second in the worker after it took the job's stdio (when the tests can see it) and before
    it starts the job: the window in which a forwarded SIGINT once ended the worker with
    status 1 (a KeyboardInterrupt outside the job's handling) and, before the worker's own
    handlers, was lost (the server ignores SIGINT)."""
    root = tmp_path_factory.mktemp("slowlib")
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    module = root / "src" / "certsmooth" / "forkserver.py"
    text = module.read_text()
    worker = '        os.chdir(request["cwd"])\n'
    assert text.count(worker) == 1
    module.write_text(text.replace(worker, "        __import__('time').sleep(1.0)\n" + worker))
    proc, path = _start(root / "src")
    yield proc, path, root / "src"
    forkserver.stop(proc, path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_job_gets_ready_is_held_until_it_runs(slow_server, sig):
    server_proc, path, library = slow_server
    proc = _long_job(library, path)
    worker = _wait_for_worker(server_proc.pid, proc)  # asleep: the signal is held
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    assert code == -sig, proc.stderr.read()
    assert _gone(worker), f"worker {worker} still running"


def test_a_killed_job_takes_its_worker_with_it(server, library):
    server_proc, path = server
    proc = _long_job(library, path)
    worker = _wait_for_worker(server_proc.pid, proc)
    proc.kill()
    proc.wait(timeout=60)
    assert _gone(worker), f"worker {worker} still running"


def _wait_for_worker(server_pid: int, proc: subprocess.Popen) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        worker = _worker_of(server_pid, proc.pid)
        if worker is not None:
            return worker
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("no worker started")


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (waiting up to 30 s)."""
    t0 = time.monotonic()
    while _alive(pid) and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    return not _alive(pid)


@pytest.mark.parametrize("group", [False, True], ids=["the workflow", "its process group"])
def test_the_server_stops_and_cleans_up_when_the_workflow_is_killed(library, tmp_path, group):
    """Started by a process that is then killed with SIGKILL (a killed Snakemake, alone or
    with its whole process group): the server exits by itself and removes its socket folder."""
    code = ("import sys, time; from certsmooth import forkserver; proc, path = forkserver.start(sys.executable, 1); "
            "print(proc.pid, path, flush=True); time.sleep(60)")  # fmt: skip
    env = {k: v for k, v in _env(library, "").items() if k != "CERTSMOOTH_FORKSERVER"}
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    pid, path = parent.stdout.readline().split()
    t0 = time.monotonic()
    while not os.path.exists(path) and time.monotonic() - t0 < 120:
        time.sleep(0.05)
    os.killpg(parent.pid, signal.SIGKILL) if group else parent.kill()
    parent.wait()
    try:
        assert _gone(int(pid)), f"server {pid} still running after its parent died"
        assert not os.path.exists(os.path.dirname(path)), "the socket folder is left behind"
    finally:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def test_off_starts_no_server(monkeypatch):
    monkeypatch.setenv("CERTSMOOTH_FORKSERVER", "off")
    assert forkserver.start(sys.executable, 1) is None
