"""Run model-written code in an OS sandbox and judge it with tests that run outside it.

Threat model: the completion is written by an adversary.  It may try to forge
a pass, read secrets, damage files, reach the network, kill the evaluator, or
outlive the evaluation.  These rules hold whatever it does:

* **The verdict is computed in this (trusted) process.**  The problem's tests
  (HumanEval's ``check(candidate)``, MBPP's assert lines) and its prompt run
  here; the candidate is a proxy that ships the call's arguments to the
  sandboxed process over a private pipe and gets back ``repr(result)``, which
  is rebuilt with :func:`ast.literal_eval` only.  A result that is not a plain
  literal (None, bool, int, float incl. inf/nan, complex, str, bytes, tuple,
  list, dict, set) fails; no object, ``__eq__`` or code of the candidate's ever
  reaches the asserts, and nothing it writes to the pipe can do more than
  return a value.  In-place changes to list / dict / set arguments are copied
  back the same way.  MBPP problems whose tests pass objects of the
  candidate's own classes therefore fail (a known limit).
* **The code runs in bubblewrap** (backend ``bwrap``, the default) and sees
  almost nothing: an empty read-only root with, read-only, ``/usr``, the
  top-level ``/bin /sbin /lib*``, ``/etc/ld.so.cache`` and ``/etc/localtime``
  (not the rest of ``/etc``: no shadow, keys or credentials), and the base
  interpreter's prefix (``sys.base_prefix``, e.g. a pyenv Python under
  ``/root``: exactly that prefix, its ``site-packages`` hidden; no venv, the
  child needs the standard library only, and its source comes on the command
  line, so no file of this repo is visible).  ``/root``, ``/home``, ``/work``,
  ``/var``, ``/opt``, ``/srv``, ``/mnt``, ``/run`` and the host ``/tmp`` do
  not exist inside; a fresh tmpfs is ``/tmp`` = cwd = HOME, the only writable
  place; fresh ``/dev`` and ``/proc``.  New pid, net, ipc, uts (and cgroup)
  namespaces, ``--die-with-parent``, ``--new-session``, ``--clearenv``; a
  seccomp filter (libseccomp via ``pyseccomp``) makes creating processes
  (fork, vfork, clone without CLONE_THREAD, clone3), ptrace, setns, unshare,
  mount, io_uring (a second syscall path that seccomp cannot see into) and a
  few kernel interfaces fail.  The whole process group and with it the pid
  namespace is killed after the total wall-clock budget, when a call exceeds
  its own budget, and after every problem.  stdout/stderr go to a file of this
  process capped by the file-size limit; the last ``output_kb`` KB are kept in
  the verdict.
* **What one completion may cost** (:class:`Limits`; each bound has a test
  that runs the attack).  Time: the wall-clock budget, and RLIMIT_CPU.
  Memory: RLIMIT_AS.  A file: RLIMIT_FSIZE, no core files.  Disk: the work
  dir's tmpfs has ``size`` *and* ``nr_inodes`` = ``files`` (without an inode
  count a 64 MB tmpfs took 200,000 empty files in 1.6 s, 1 KB of kernel
  memory each, and showed 0% used).  bwrap's ``--tmpfs`` takes no inode count,
  so ``unshare`` gives bwrap a private mount namespace in which ``mount`` puts
  that tmpfs on an empty host dir (nothing is mounted on the host) that bwrap
  binds as ``/tmp``.  Tasks: RLIMIT_NPROC = ``tasks`` (fork is blocked, so
  these are threads; raw ``pthread_create`` with small stacks made 5,000 of
  them in 0.5 s under the address-space limit alone, now ``tasks - 1``
  besides the main thread).  The kernel counts RLIMIT_NPROC per uid *and user
  namespace*, so it bounds one sandbox only if no other task shares its uid
  there: in the user-namespace mode every sandbox has a namespace of its own;
  in the real-uid mode every sandbox gets a fresh uid/gid from :data:`IDS`
  (systemd's "unused" range; two sandboxes that drew the same id would only
  share one budget).  The kernel exempts root's uid, so as root without
  CAP_SYS_ADMIN (a user namespace mapped to root) threads stay bounded by the
  address space only, and :func:`check_backend` warns.  A pids cgroup would
  need a writable cgroupfs, which containers usually lack; seccomp cannot
  count.  Replies: the trusted side reads at most :data:`MAX_REPLY` bytes per
  reply, inside the time budget, before parsing anything, and fails the
  problem over it (a 9 MB repr cost the evaluator 3 GB and 20 s of a 5 s
  budget in ``literal_eval``; HumanEval's largest canonical reply is 486 bytes).
* **Whose files it could read**: when the evaluator is root (CI, containers)
  a user namespace would map the sandbox's uid to host root, so root-only
  files among the visible ones would be readable.  As root with
  CAP_SYS_ADMIN (:func:`real_uid_mode`), bubblewrap therefore runs without a
  user namespace and ``setpriv`` switches the child to a fresh host uid/gid
  from :data:`IDS` with no groups, capabilities or bounding set before the
  interpreter starts: it can read only world-readable files and write nothing
  but its tmpfs.  Otherwise (an ordinary user; root without CAP_SYS_ADMIN) it
  runs in a user namespace as uid 65534 mapped to the caller, with every
  capability dropped: it reads what the caller may read *of the allow-list
  above*.  Either way the allow-list is what keeps secrets out of reach.
* **A sandbox that fails to start** (no pid, fd or memory left) fails its
  problem, with the reason in the verdict; the run goes on.  A sandbox that
  cannot run at all is found before the run by :func:`check_backend`.

Backend ``guard`` (explicit opt-in only) runs the same child with the same
rlimits (but RLIMIT_NPROC: it runs as the caller) and the old Python-level
guard but no OS isolation: an adversary can escape it.  It logs a loud
warning and every verdict says ``backend="guard"``.  The guard also runs
inside bubblewrap as an inner layer against accidents.

:func:`tool_path` finds bubblewrap (on the caller's PATH) and the helpers once, as absolute paths used
everywhere; the README says how to install them.
"""

from __future__ import annotations

import ast
import errno
import json
import logging
import os
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokstudy import choices
from tokstudy.errors import CandidateError, SandboxError

log = logging.getLogger(__name__)

BACKENDS = choices.SANDBOX_BACKENDS  # bwrap: the OS sandbox; guard: Python-level only (opt-in)
CHILD = Path(__file__).with_name("sandbox_child.py")
INSTALL = "apt-get install bubblewrap (as root; see README 'Environment')"
GUARD_WARNING = ("sandbox backend 'guard': generated code ran WITHOUT OS isolation (Python-level guard only); "
                 "a hostile completion could escape it and forge results")
MAX_REPLY = 256 << 10  # bytes of one message from the sandbox; HumanEval's largest canonical reply is 486
NOBODY = 65534  # the sandbox's uid/gid in the user-namespace mode
IDS = range(0x70000000, 0x71000000)  # real-uid mode: a fresh uid/gid per sandbox, in systemd's "unused" range
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
# modules an MBPP completion may import for its assert lines to use (pure computation, no side effects)
TEST_MODULES = frozenset({"math", "cmath", "re", "collections", "itertools", "functools", "heapq", "bisect",
                          "operator", "string", "statistics", "fractions", "decimal", "datetime"})


class SandboxTimeout(BaseException):
    """The candidate used up its time (a BaseException so test code's ``except Exception`` cannot swallow it)."""


@dataclass(frozen=True)
class Limits:
    """Per-problem limits: ``timeout_s`` wall time in all (from the sandbox's start), ``call_timeout_s`` per
    call (default: no limit of its own), address space, file size, the tmpfs work dir's size and inodes
    (``files``), tasks (threads; bwrap only), output tail kept."""

    timeout_s: float = 5.0
    call_timeout_s: float | None = None
    memory_mb: int = 1024
    fsize_mb: int = 16
    disk_mb: int = 64
    files: int = 4096
    tasks: int = 32
    output_kb: int = 4


@dataclass(frozen=True)
class Task:
    """What the trusted side needs: ``setup`` + ``prompt`` (trusted code), ``tests``, ``entry_point``.

    HumanEval: ``tests`` defines ``check(candidate)``, called with a proxy of
    ``entry_point``.  MBPP (``entry_point=None``): ``tests`` are assert lines on
    the functions the completion defines, each name bound to a proxy.
    """

    prompt: str
    tests: str
    entry_point: str | None = None
    setup: str = ""


@dataclass(frozen=True)
class Verdict:
    """One problem's outcome: ``status`` in {passed, failed, timeout}; ``detail`` the reason and output tail."""

    status: str
    detail: str = ""
    seconds: float = 0.0
    backend: str = "bwrap"

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# --------------------------------------------------------------------------- the backend


_CHECKED: dict[str, bool] = {}
_TOOLS: dict[str, str] = {}
_LOCK = threading.RLock()
_PACKAGE = {"setpriv": "util-linux", "unshare": "util-linux", "mount": "mount", "sh": "dash"}


def tool_path(name: str) -> str:
    """Absolute path of ``bwrap`` or a helper (``setpriv unshare mount sh``), found once and then used everywhere.

    bwrap is looked up on the caller's PATH and must run (``bwrap --version``); the helpers under
    :data:`SYSTEM_PATH` (setpriv runs inside the sandbox, which sees only /usr and /bin).  Else a one-line
    :class:`SandboxError` naming the path and the fix.
    """
    with _LOCK:
        if name not in _TOOLS:
            found = shutil.which(name, path=None if name == "bwrap" else SYSTEM_PATH)
            if found is None and name == "bwrap":
                raise SandboxError(f"bubblewrap (bwrap) not found, refusing to run generated code; install it: "
                                   f"{INSTALL}, or opt in to the weak guard with --sandbox guard")
            if found is None:
                raise SandboxError(f"{name} not found in {SYSTEM_PATH}; the bwrap sandbox needs it: "
                                   f"apt-get install {_PACKAGE[name]}")
            path = os.path.abspath(found)
            if name == "bwrap":
                _check_runs(path)
            _TOOLS[name] = path
        return _TOOLS[name]


def _check_runs(bwrap: str) -> None:
    """A one-line :class:`SandboxError` naming ``bwrap`` and the fix unless ``bwrap --version`` runs."""
    try:
        r = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30, check=False)
        why = r.returncode and f"exit status {r.returncode}: {r.stderr}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    if why:
        raise SandboxError(f"bubblewrap at {bwrap} cannot be executed ({' '.join(why.split())[:300]}); "
                           f"reinstall it: {INSTALL}, or put a working bwrap first on PATH")


def check_backend(backend: str) -> str:
    """``backend`` if it can run here, else :class:`SandboxError` naming the fix (bwrap checked once)."""
    if backend not in BACKENDS:
        raise SandboxError(f"unknown sandbox backend {backend!r}; use one of {list(BACKENDS)} "
                           "(evaluate.sandbox in params.yaml / --sandbox)")
    if backend == "guard":
        log.warning(GUARD_WARNING)
        return backend
    with _LOCK:
        if "bwrap" not in _CHECKED:
            tool_path("bwrap")
            with Session(Limits(timeout_s=10.0), backend="bwrap") as probe:
                probe.load("x = 1\n")
            _CHECKED["bwrap"] = True
            if os.geteuid() == 0 and not real_uid_mode():
                log.warning("sandbox: root without CAP_SYS_ADMIN: the sandbox's uid maps to root, which the kernel "
                            "exempts from RLIMIT_NPROC, so its threads are bounded by the address space only; "
                            "run the evaluation as an ordinary user or with CAP_SYS_ADMIN")
    return backend


def _seccomp_filter() -> bytes:
    """BPF of the seccomp filter: no new processes, no ptrace / namespaces / mounts / keyrings / io_uring."""
    import pyseccomp as sc

    clone_thread = 0x00010000
    f = sc.SyscallFilter(sc.ALLOW)
    # io_uring runs open/connect/... in the kernel's own workers, out of this filter's sight
    for name in ("fork", "vfork", "ptrace", "setns", "unshare", "mount", "umount2", "pivot_root", "chroot",
                 "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
                 "process_vm_readv", "process_vm_writev", "kexec_load", "init_module", "finit_module",
                 "io_uring_setup", "io_uring_enter", "io_uring_register"):
        f.add_rule(sc.ERRNO(errno.EPERM), name)
    f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, clone_thread, 0))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags live in memory: glibc then falls back to clone
    with tempfile.TemporaryFile() as fh:
        f.export_bpf(fh)
        fh.seek(0)
        return fh.read()


_FILTER: list[bytes] = []


def _python() -> str:
    """The base interpreter (not the venv's link: the sandbox sees no venv), whose prefix is bound read-only."""
    exe = Path(sys.base_prefix, "bin", f"python{sys.version_info.major}.{sys.version_info.minor}")
    if not exe.is_file():
        raise SandboxError(f"no interpreter at {exe} (sys.base_prefix); the bwrap sandbox runs the base "
                           "Python of this environment, install tokstudy into a standard Python/venv")
    return str(exe)


def real_uid_mode() -> bool:
    """True when this process is root with CAP_SYS_ADMIN: bwrap then needs no user namespace and the child
    runs as the host's real uid/gid 65534 (via ``setpriv``); otherwise it runs in a user namespace as the caller."""
    if os.geteuid() != 0:
        return False
    caps = [line.split()[1] for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapEff")]
    return bool(caps) and bool(int(caps[0], 16) & (1 << 21))  # CAP_SYS_ADMIN


def _dirs(path: str) -> list[str]:
    """World-traversable parent dirs of ``path`` on the sandbox's empty root (bwrap would copy /root's 0700)."""
    argv: list[str] = []
    for parent in reversed(Path(path).parents[:-1]):
        argv += ["--perms", "0755", "--dir", str(parent)]
    return argv


def _layout() -> list[str]:
    """The filesystem the child sees: an empty read-only root plus an allow-list, nothing else.

    /usr, the top-level /bin /sbin /lib* (as the host has them: links into /usr or dirs), the loader cache
    and time zone from /etc, and the interpreter's prefix without its site-packages.  Not /etc as a whole
    (shadow, keys), /root, /home, /work, /var, /opt, /srv, /mnt, /run, the repo or the host /tmp.
    """
    argv = ["--tmpfs", "/", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--perms", "0755", "--dir", "/etc"]
    for name in ("/etc/ld.so.cache", "/etc/localtime"):
        argv += ["--ro-bind-try", name, name]
    for prefix in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}):
        if prefix == "/usr" or prefix.startswith("/usr/"):
            continue
        argv += _dirs(prefix) + ["--ro-bind", prefix, prefix]
    vv = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in sorted({sys.base_prefix, sys.base_exec_prefix}):
        site = os.path.join(os.path.realpath(prefix), "lib", vv, "site-packages")
        if os.path.isdir(site):
            argv += ["--tmpfs", site, "--remount-ro", site]
    return argv


# run by sh in the mount namespace unshare(1) made private: mount(8) the work dir's tmpfs, then exec bwrap
MOUNT_THEN_EXEC = '"$1" -n -t tmpfs -o "$2" tokstudy-work "$3" && shift 3 && exec "$@"'


def _bwrap_argv(limits: Limits, seccomp_fd: int, workdir: str) -> list[str]:
    """unshare + mount (the tmpfs with size and nr_inodes, bound as /tmp) + bwrap (+ setpriv to a fresh id)."""
    real_uid = real_uid_mode()
    env = {"HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    tmpfs = f"size={limits.disk_mb << 20},nr_inodes={limits.files},mode=1777,nosuid,nodev"
    argv = [tool_path("unshare"), "--mount", "--propagation", "private",
            *([] if real_uid else ["--user", "--map-root-user"]), "--",
            tool_path("sh"), "-c", MOUNT_THEN_EXEC, "sh", tool_path("mount"), tmpfs, workdir,
            tool_path("bwrap"), *_layout(), "--dev", "/dev", "--proc", "/proc", "--bind", workdir, "/tmp",
            "--remount-ro", "/dev", "--remount-ro", "/",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv", "--chdir", "/tmp",
            "--seccomp", str(seccomp_fd)]
    for k, v in env.items():
        argv += ["--setenv", k, v]
    if not real_uid:
        return argv + ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--cap-drop", "ALL", "--"]
    ident = IDS.start + secrets.randbelow(len(IDS))  # a uid of its own: RLIMIT_NPROC counts this sandbox only
    return argv + ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                   "--cap-add", "CAP_SETPCAP", "--", tool_path("setpriv"), f"--reuid={ident}", f"--regid={ident}",
                   "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]


# --------------------------------------------------------------------------- one sandboxed process


class Session:
    """One sandboxed process holding one program; :meth:`call` runs its functions on literal arguments."""

    def __init__(self, limits: Limits = Limits(), *, backend: str = "bwrap"):
        self.limits, self.backend = limits, backend
        self.deadline = time.monotonic() + limits.timeout_s
        self.names: list[str] = []
        self.modules: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self.output: Any = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._to_child = self._from_child = -1
        try:
            self._start()
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError):  # no pid, fd, memory or disk left (the caller fails one problem)
                raise SandboxError(f"the {backend} sandbox could not start: {exc}") from None
            raise
        try:
            hello = self._receive(max(self.limits.timeout_s, 10.0))
        except (CandidateError, SandboxTimeout):
            hello = None
        if hello != {"hello": True}:
            tail = self.close()
            raise SandboxError(f"the {self.backend} sandbox did not start ({tail.strip()[-500:] or 'no output'}); "
                               f"check that `bwrap --ro-bind / / --unshare-all true` works, or {INSTALL}")
        self.deadline = time.monotonic() + limits.timeout_s  # a slow start (a busy machine) costs no budget

    def _start(self) -> None:
        """Spawn the child on two private pipes, its work dir a fresh host dir (bwrap: the tmpfs's mount point)."""
        self.output = tempfile.TemporaryFile(prefix="tokstudy-sandbox-")
        self._tmp = tempfile.TemporaryDirectory(prefix="tokstudy-work-", ignore_cleanup_errors=True)
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        keep = [to_child_r, from_child_w]
        try:
            child = [sys.executable, "-I", str(CHILD), str(to_child_r), str(from_child_w)]
            cwd = self._tmp.name
            if self.backend == "bwrap":
                if not _FILTER:
                    _FILTER.append(_seccomp_filter())
                seccomp_fd = os.memfd_create("tokstudy-seccomp", 0)
                keep.append(seccomp_fd)
                os.write(seccomp_fd, _FILTER[0])
                os.lseek(seccomp_fd, 0, os.SEEK_SET)
                # the child's source goes on the command line: no path of this repo is visible inside
                child = _bwrap_argv(self.limits, seccomp_fd, cwd) + [_python(), "-I", "-c", CHILD.read_text(),
                                                                     *child[3:]]
                cwd = "/"
            env = {"HOME": cwd, "TMPDIR": cwd, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
            self.proc = subprocess.Popen(child, stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT,
                                         cwd=cwd, env=env, pass_fds=keep, start_new_session=True)
        finally:
            for fd in keep:
                os.close(fd)
        os.set_blocking(self._to_child, False)

    def load(self, program: str) -> None:
        """Run ``program`` in the sandbox; :class:`CandidateError` if it raises, then its functions are callable."""
        lim = self.limits
        # RLIMIT_NPROC counts per uid: the guard's child runs as the caller, whose other tasks count too
        self._send({"program": program, "memory_mb": lim.memory_mb, "fsize_mb": lim.fsize_mb,
                    "cpu_s": int(lim.timeout_s) + 1, "tasks": lim.tasks if self.backend == "bwrap" else None,
                    "guard": True})
        ready = self._receive()
        if not isinstance(ready, dict) or ready.get("ok") is not True:
            raise CandidateError(f"program failed: {_error_of(ready)}")
        names, modules = ready.get("names"), ready.get("modules")
        self.names = [n for n in names if isinstance(n, str) and n.isidentifier()] if isinstance(names, list) else []
        self.modules = ({a: m for a, m in modules.items() if isinstance(a, str) and isinstance(m, str)}
                        if isinstance(modules, dict) else {})

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, obj: Any) -> None:
        data = json.dumps(obj).encode("utf-8")
        view = memoryview(struct.pack(">I", len(data)) + data)
        while view:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._to_child], [], left)[1]:
                raise SandboxTimeout(f"timed out after {self.limits.timeout_s:g} s")
            try:
                view = view[os.write(self._to_child, view):]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise CandidateError(f"sandboxed process is gone ({exc.strerror})") from None

    def _read(self, n: int, until: float) -> bytes:
        buf = b""
        while len(buf) < n:
            left = until - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise SandboxTimeout(f"timed out after {self.limits.timeout_s:g} s")
            chunk = os.read(self._from_child, min(n - len(buf), 1 << 20))
            if not chunk:
                raise CandidateError("sandboxed process exited")
            buf += chunk
        return buf

    def _receive(self, budget: float | None = None) -> Any:
        per_call = self.limits.call_timeout_s
        until = self.deadline if per_call is None else min(self.deadline, time.monotonic() + per_call)
        if budget is not None:
            until = time.monotonic() + budget
        (n,) = struct.unpack(">I", self._read(4, until))
        if n > MAX_REPLY:  # read no further: parsing a large literal costs this process GBs and many seconds
            raise CandidateError(f"reply of {n} bytes is over the {MAX_REPLY} byte limit")
        try:
            return json.loads(self._read(n, until).decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise CandidateError(f"malformed reply ({type(exc).__name__})") from None

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``name(*args, **kwargs)`` in the sandbox; the result rebuilt from a literal (else CandidateError)."""
        try:
            self._send({"call": name, "args": repr(tuple(args)), "kwargs": repr(dict(kwargs))})
        except RecursionError:
            raise CandidateError("arguments too deeply nested to send") from None
        reply = self._receive()
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            raise CandidateError(f"{name}() failed: {_error_of(reply)}")
        value, after = literal(reply.get("value")), literal(reply.get("args"))
        if isinstance(after, tuple) and len(after) == len(args):
            for old, new in zip(args, after, strict=True):
                _copy_back(old, new)
        return value

    def close(self) -> str:
        """Kill the process group (and so the pid namespace); return the output tail (``output_kb``)."""
        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                os.close(fd)
        self._to_child = self._from_child = -1
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None
        tail = b""
        if self.output is not None and not self.output.closed:
            size = self.output.seek(0, os.SEEK_END)
            self.output.seek(max(0, size - (self.limits.output_kb << 10)))
            tail = self.output.read()
            self.output.close()
        if self._tmp is not None:  # bwrap: the tmpfs was mounted only in the sandbox's namespace
            self._tmp.cleanup()
            self._tmp = None
        return tail.decode("utf-8", errors="replace")


def _error_of(reply: Any) -> str:
    if isinstance(reply, dict) and isinstance(reply.get("error"), str):
        return reply["error"][:2000]
    return "malformed reply"


_SPECIAL = {"inf": float("inf"), "nan": float("nan")}


def literal(text: Any) -> Any:
    """A plain Python literal from its ``repr`` (``inf``/``nan`` allowed), else :class:`CandidateError`."""
    if not isinstance(text, str):
        raise CandidateError("result is not a repr string")
    try:
        tree = ast.parse(text, mode="eval")
        for node in ast.walk(tree):
            for fld, child in ast.iter_fields(node):
                if isinstance(child, ast.Name) and child.id in _SPECIAL:
                    setattr(node, fld, ast.Constant(_SPECIAL[child.id]))
        if isinstance(tree.body, ast.Name) and tree.body.id in _SPECIAL:
            return _SPECIAL[tree.body.id]
        return ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise CandidateError(f"result is not a plain literal: {text[:200]}") from None


def _copy_back(old: Any, new: Any) -> None:
    """Mirror an in-place change of a list / dict / set argument (the candidate's copy came back as ``new``)."""
    if isinstance(old, list) and isinstance(new, list):
        old[:] = new
    elif isinstance(old, (dict, set)) and type(new) is type(old):
        old.clear()
        old.update(new)


# --------------------------------------------------------------------------- judging


class _Proxy:
    """The candidate as the trusted tests see it: every call goes to the sandbox."""

    def __init__(self, session: Session, name: str):
        self._session, self.__name__ = session, name

    def __call__(self, *args, **kwargs):
        return self._session.call(self.__name__, *args, **kwargs)


def _trusted(code: str, what: str):
    try:
        return compile(code, f"<{what}>", "exec")
    except SyntaxError as exc:
        raise SandboxError(f"the task's {what} (setup + prompt for 'prompt') must compile on its own, "
                           f"as HumanEval's and MBPP's do: {exc}") from None


def _bind_candidate(ns: dict[str, Any], session: Session) -> None:
    """MBPP: a proxy per function the completion defined, and the :data:`TEST_MODULES` it imported.

    Names of builtins and of what setup/prompt defined stay trusted, so a
    completion cannot redefine ``sorted`` or ``set`` under the tests' feet.
    """
    import builtins
    import importlib

    for alias, name in session.modules.items():
        if alias not in ns and not hasattr(builtins, alias) and name in TEST_MODULES:
            ns[alias] = importlib.import_module(name)
    for name in session.names:
        if name not in ns and not hasattr(builtins, name):
            ns[name] = _Proxy(session, name)


def judge(task: Task, completion: str, limits: Limits = Limits(), *, backend: str = "bwrap") -> Verdict:
    """Run ``task``'s tests here on ``completion`` executed in the sandbox: passed iff no test fails.

    The sandbox holds ``setup + prompt + completion``; the tests and a copy of
    ``setup + prompt`` (HumanEval's helpers) run in a fresh namespace of this process.
    """
    t0 = time.monotonic()
    try:
        session = Session(limits, backend=backend)
    except SandboxError as exc:  # e.g. no pid left: this problem fails, the run goes on (judge_all checked the backend)
        return Verdict("failed", str(exc)[:2000], time.monotonic() - t0, backend)
    status, reason = "failed", ""
    try:
        session.load(f"{task.setup}\n{task.prompt}{completion}\n")
        ns: dict[str, Any] = {"__name__": "__tests__"}
        exec(_trusted(f"{task.setup}\n{task.prompt}\n", "prompt"), ns)
        if task.entry_point is None:
            _bind_candidate(ns, session)
            exec(_trusted(task.tests, "tests"), ns)
        else:
            exec(_trusted(task.tests, "tests"), ns)
            if not callable(ns.get("check")):
                raise SandboxError(f"the task's tests must define check(candidate) (entry point {task.entry_point!r})")
            ns[task.entry_point] = candidate = _Proxy(session, task.entry_point)  # some tests name it
            ns["check"](candidate)
        status = "passed"
    except SandboxTimeout as exc:
        status, reason = "timeout", str(exc)
    except SandboxError:
        raise
    except AssertionError as exc:
        reason = f"AssertionError: {exc}"[:2000]
    except Exception as exc:  # noqa: BLE001 - any error of candidate or test is a failed test
        reason = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        tail = session.close()
    return Verdict(status, f"{reason}\n{tail}".strip("\n"), time.monotonic() - t0, backend)


def judge_all(tasks: Sequence[Task], completions: Sequence[str], limits: Limits = Limits(), *,
              backend: str = "bwrap", workers: int = 2, desc: str = "run tests") -> list[Verdict]:
    """:func:`judge` on each pair, ``workers`` sandboxes at a time; verdicts in input order."""
    from tqdm.auto import tqdm

    if len(tasks) != len(completions):
        raise SandboxError(f"{len(tasks)} tasks but {len(completions)} completions")
    check_backend(backend)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(judge, t, c, limits, backend=backend) for t, c in zip(tasks, completions, strict=True)]
        return [f.result() for f in tqdm(futures, desc=desc, leave=False)]


def run_program(program: str, limits: Limits = Limits(), *, backend: str = "bwrap") -> Verdict:
    """Run ``program`` alone in the sandbox: passed iff it finishes without an exception (tests, benchmarks)."""
    return judge(Task(prompt="", tests=""), program, limits, backend=backend)
