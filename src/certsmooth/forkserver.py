"""A fork server for the workflow's jobs: ``import torch`` once per run, not once per job.

Every job of the workflow is a fresh ``python -m certsmooth <step>``; before any work it
pays Python's start and ``import torch`` (about 2 s on the development machine, half of a
typical certification job; 100 of the demo's 160 jobs import torch). On a local run the
workflow starts one server (``workflow/rules/common.smk``, ``onstart``) that imports the
third-party libraries once and then forks a copy of itself for each job.

* The job's own process stays what Snakemake started and waits: it hands the server its
  arguments, working directory, environment, ``sys.path``, umask and its stdin / stdout /
  stderr (as file descriptors over a Unix socket, ``SCM_RIGHTS``), forwards the signals it
  receives to the forked worker, and exits with the worker's status (or dies of the same
  signal). A signal that comes while the job is handed over is held (blocked in the job's
  process until it forwards, in the worker until it starts the job), never lost or taken
  for a failure. Snakemake's logs, exit codes, kills and ``benchmark:`` wall times are those of a
  plain run; the worker's CPU and memory are not in the job's ``benchmark:`` file (it is not
  a descendant of the job's shell).
* The server imports no certsmooth module: each worker imports the library from disk when
  it starts, so an edit during a run reaches the jobs started after it, as without the
  server. Outputs are bit for bit those of a plain run (the forked interpreter has done
  nothing but import numpy, pandas, SciPy, torch and safetensors; no CUDA context exists
  before the fork, and every job sets its own threads and seeds).
* Per job the server forks a supervisor, and the supervisor forks the worker: the
  supervisor reports the worker's exit status, and kills the worker when the job's process
  is gone (e.g. ``kill -9``). The worker does nothing until the supervisor has told the job
  its pid, so a job either runs in the server or, when nothing answers at the socket, in
  its own process as before; never both.
* Off by default outside the workflow; the workflow starts it only for local execution
  without conda or containers (jobs on cluster nodes start as before), and
  ``CERTSMOOTH_FORKSERVER=off`` in the environment turns it off. It runs in a session of
  its own (a signal to the workflow's process group reaches the jobs, which forward it, not
  the server), stops with the workflow, and on its own within a second when the workflow's
  process is gone (also after SIGKILL), removing its socket folder either way.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import struct
import sys

ENV = "CERTSMOOTH_FORKSERVER"  # the socket's path, in the jobs' environment; "off": no server
PRELOAD = ("numpy", "pandas", "scipy.special", "torch", "safetensors.torch")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
# read once, when a library loads or the interpreter starts: a job whose value differs from
# the server's runs in its own process (Snakemake sets the thread counts per job)
AT_START = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
            "NUMEXPR_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES",
            "PYTHONHASHSEED", "LD_PRELOAD", "LD_LIBRARY_PATH")  # fmt: skip
_PID = struct.Struct("!q")
_STATUS = struct.Struct("!ii")  # (exit code, signal): one of them is 0
_MAX_REQUEST = 16 * 2**20


# ---- the job's side ------------------------------------------------------------------------


def delegate(path: str, argv: list[str]) -> int | None:
    """Run ``python -m certsmooth argv[1:]`` in the server at ``path``; the exit code, or
    None when no server answers (the caller then runs the command itself)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    umask = os.umask(0)
    os.umask(umask)
    # a signal between the request and the forwarding handlers waits (blocked) instead of
    # ending this process alone, leaving a worker that is then killed unannounced
    held = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        return _delegate(sock, argv, umask)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a held signal arrives here: forwarded


def _delegate(sock: socket.socket, argv: list[str], umask: int) -> int | None:
    request = json.dumps(
        {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path, "umask": umask,
         "interpreter": interpreter()}  # fmt: skip
    ).encode()
    try:
        fds = array.array("i", [0, 1, 2])
        sock.sendmsg([struct.pack("!I", len(request)), request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        pid = _recv_exact(sock, _PID.size)
    except OSError:
        pid = b""
    if len(pid) < _PID.size:  # refused (another interpreter) or gone before a worker started
        sock.close()
        return None
    worker = _PID.unpack(pid)[0]

    def forward(signum, _frame):
        try:
            os.kill(worker, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    status = _recv_exact(sock, _STATUS.size)
    sock.close()
    if len(status) < _STATUS.size:
        print("certsmooth: error: the fork server stopped during the job; rerun the workflow", file=sys.stderr)
        return 1
    code, signum = _STATUS.unpack(status)
    if signum:
        sys.stdout.flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # the worker's death, as the job's own
    return code


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        try:
            chunk = sock.recv(n - len(out))
        except InterruptedError:
            continue
        if not chunk:
            break
        out += chunk
    return out


# ---- the server ----------------------------------------------------------------------------


def serve(path: str, parent: int) -> None:
    """Listen at ``path`` (bound before the imports, so early jobs wait in the backlog),
    import :data:`PRELOAD`, then fork a supervisor per connection until ``parent`` is gone
    or SIGTERM arrives."""
    me = os.getpid()
    signal.signal(signal.SIGTERM, _exit)  # stop(): leave through the clean-up below
    try:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(128)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C reaches the jobs themselves
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
        import importlib

        for name in PRELOAD:
            importlib.import_module(name)
        listener.settimeout(1.0)
        while os.getppid() == parent:
            try:
                conn, _ = listener.accept()
            except (TimeoutError, InterruptedError):
                continue
            if os.fork() == 0:
                listener.close()
                _supervise(conn)  # never returns
            conn.close()
    finally:
        if os.getpid() == me:  # not a supervisor that a signal caught on its way out of the fork
            _remove(path)


def _exit(_signum, _frame) -> None:
    raise SystemExit(0)


def _remove(path: str) -> None:
    """The socket and its private folder (the server's own clean-up: also after the workflow
    was killed with SIGKILL, which leaves nobody else to do it)."""
    for remove, target in ((os.unlink, path), (os.rmdir, os.path.dirname(path))):
        try:
            remove(target)
        except OSError:
            pass


def _supervise(conn: socket.socket) -> None:
    """In the forked supervisor: read the job's request, fork the worker, tell the job its
    pid, release the worker, report its status; kill it if the job goes away."""
    code = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sig in (signal.SIGTERM, signal.SIGHUP):  # the worker's death is reported, not the supervisor's
            signal.signal(sig, signal.SIG_IGN)
        conn.settimeout(None)
        request, fds = _recv_request(conn)
        if not compatible(request):
            return  # another interpreter or start-up setting: the job runs itself
        go_r, go_w = os.pipe()
        # the worker starts with the job's signals blocked, so none forwarded before it is
        # ready is lost (the server ignores SIGINT) or ends it unreported (_work)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        worker = os.fork()
        if worker == 0:
            os.close(go_w)
            _work(conn, request, fds, go_r)  # never returns
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        os.close(go_r)
        for fd in fds:
            os.close(fd)
        conn.sendall(_PID.pack(worker))
        os.write(go_w, b"1")
        os.close(go_w)
        _wait(conn, worker)
    except BaseException:  # noqa: BLE001 - a supervisor never unwinds into the server's loop
        code = 1
    finally:
        os._exit(code)


def interpreter() -> list[str]:
    """This interpreter and its environment (a venv reached through a symbolic link is the same)."""
    return [os.path.realpath(sys.executable), os.path.realpath(sys.prefix), sys.version]


def compatible(request: dict) -> bool:
    """Whether a job's interpreter and start-up settings are the server's."""
    env = request["env"]
    return request["interpreter"] == interpreter() and all(env.get(k) == os.environ.get(k) for k in AT_START)


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    fds = array.array("i")
    msg, anc, _flags, _addr = conn.recvmsg(4, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    msg += _recv_exact(conn, 4 - len(msg))
    (n,) = struct.unpack("!I", msg)
    if n > _MAX_REQUEST or len(fds) != 3:
        raise ValueError("malformed request")
    body = _recv_exact(conn, n)
    return json.loads(body), list(fds)


def _wait(conn: socket.socket, worker: int) -> None:
    """Until the worker exits: if the job's process goes away first, the worker is killed."""
    import select

    pidfd = os.pidfd_open(worker)
    poll = select.poll()
    poll.register(pidfd, select.POLLIN)
    poll.register(conn.fileno(), select.POLLIN | select.POLLHUP)
    killed = False
    while True:
        ready = dict(poll.poll())
        if pidfd in ready:
            break
        if conn.fileno() in ready and not killed:  # the job's end of the socket closed
            os.kill(worker, signal.SIGKILL)
            killed = True
            poll.unregister(conn.fileno())
    _, status = os.waitpid(worker, 0)
    if os.WIFSIGNALED(status):
        result = _STATUS.pack(0, os.WTERMSIG(status))
    else:
        result = _STATUS.pack(os.waitstatus_to_exitcode(status), 0)
    try:
        conn.sendall(result)
    except OSError:
        pass


def _work(conn: socket.socket, request: dict, fds: list[int], go: int) -> None:
    """In the forked worker: become the job (its stdio, directory, environment, path) and
    run ``python -m certsmooth`` as a fresh interpreter would."""
    code = 1
    try:
        released = os.read(go, 1)
        os.close(go)
        conn.close()
        if not released:  # the supervisor died before the job knew this worker: do nothing
            os._exit(1)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for sig in (signal.SIGCHLD, *FORWARDED):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update({k: v for k, v in request["env"].items() if k != ENV})
        sys.path[:] = request["path"]
        sys.argv[:] = request["argv"]
        for name in [m for m in sys.modules if m == "certsmooth" or m.startswith("certsmooth.")]:
            del sys.modules[name]  # the server's own module: the job imports the library from disk
        import runpy
        import tempfile

        tempfile.tempdir = None  # the job's TMPDIR

        try:
            # a signal forwarded while the worker got ready arrives now, as the job's own:
            # SIGINT as KeyboardInterrupt below (Python checks at the unblocking), the rest
            # by their default action
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
            runpy.run_module("certsmooth", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _flush()
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # noqa: BLE001 - as the interpreter would: traceback, status 1
            import traceback

            traceback.print_exc()
            code = 1
        import atexit

        atexit._run_exitfuncs()
    finally:
        _flush()
        os._exit(code)


def _exit_code(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


# ---- the workflow's side -------------------------------------------------------------------


def start(python: str, threads: int) -> tuple[object, str] | None:
    """Start a server (``python -m certsmooth.forkserver``) in a private temporary folder,
    with the thread settings Snakemake gives a job of ``threads`` threads; (its process, the
    socket path), or None when the user turned it off."""
    import subprocess
    import tempfile

    if os.environ.get(ENV) == "off" or not hasattr(os, "pidfd_open"):
        return None
    folder = tempfile.mkdtemp(prefix="certsmooth-fork-")  # mode 0700: only this user connects
    path = os.path.join(folder, "socket")
    env = dict(os.environ, **{k: str(threads) for k in AT_START if k.endswith("_THREADS")})
    # its own session: a signal to the workflow's process group (Ctrl-C, a scheduler's kill,
    # SIGKILL) reaches the jobs, which forward it to their workers, and never the server, which
    # then sees the workflow gone and removes its socket folder
    proc = subprocess.Popen([python, "-m", "certsmooth.forkserver", path, str(os.getpid())], env=env,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    return proc, path


def stop(proc, path: str) -> None:
    """Stop the server and remove its folder (running jobs keep their workers)."""
    import shutil

    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:  # noqa: BLE001
        proc.kill()
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
