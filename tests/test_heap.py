"""certsmooth.heap: every command fixes glibc's malloc thresholds (freed blocks are reused
instead of being unmapped and faulted in again), unless the user set glibc's own."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from certsmooth import heap


def test_sets_the_thresholds_on_glibc(monkeypatch):
    for var in heap.USER_TUNABLES:
        monkeypatch.delenv(var, raising=False)
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    if not glibc:
        pytest.skip("not glibc")
    assert heap.keep_freed_blocks() is True


@pytest.mark.parametrize("var", heap.USER_TUNABLES)
def test_leaves_the_users_tunables_alone(monkeypatch, var):
    monkeypatch.setenv(var, "131072")
    assert heap.keep_freed_blocks() is False


def test_every_command_sets_them(tmp_path):
    """The CLI and the benchmarks call it first thing (a fresh process each, as a job)."""
    code = ("import sys, certsmooth.heap as h, certsmooth.{mod} as m\n"
            "calls = []\n"
            "m.keep_freed_blocks = lambda: calls.append(1) or True\n"
            "try:\n    m.main({argv})\nexcept SystemExit:\n    pass\n"
            "print(len(calls))")  # fmt: skip
    for mod, argv in (("cli", ["--version"]), ("cli", ["validate", str(tmp_path / "no.yaml")]), ("bench.cli", ["-h"])):
        out = subprocess.run([sys.executable, "-c", code.format(mod=mod, argv=argv)], capture_output=True, text=True)
        assert out.stdout.strip().splitlines()[-1] == "1", (mod, argv, out.stdout, out.stderr)
