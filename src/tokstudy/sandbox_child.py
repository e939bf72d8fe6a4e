"""The untrusted side of :mod:`tokstudy.sandbox`: run as ``python -I sandbox_child.py IN_FD OUT_FD``.

Standard library only; never imported by tokstudy itself.  Messages on the two
private pipe fds are 4-byte big-endian lengths followed by UTF-8 JSON (stdout
and stderr are only a log).  The protocol:

1. it sends ``{"hello": true}`` (the trusted side can tell a broken sandbox from a failing program);
2. it reads ``{"program", "memory_mb", "cpu_s", "fsize_mb", "tasks", "guard"}``, lowers its
   rlimits (``tasks``: RLIMIT_NPROC, unless null), installs the Python-level guard when asked, runs the program and
   answers ``{"ok": true, "names": [top-level callables], "modules": {alias: name}}`` or ``{"ok": false, "error"}``;
3. it answers each ``{"call": name, "args": repr, "kwargs": repr}`` with
   ``{"ok": true, "value": repr(result), "args": repr(args after the call)}``
   or ``{"ok": false, "error"}`` until its input closes.

Nothing it sends is trusted: the other side only ever reads plain literals back.
"""

import ast
import builtins
import json
import os
import resource
import struct
import sys

MAX_MESSAGE = 32 << 20


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _receive(fd):
    (n,) = struct.unpack(">I", _read_exact(fd, 4))
    if n > MAX_MESSAGE:
        raise EOFError
    return json.loads(_read_exact(fd, n).decode("utf-8"))


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _sender(fd):
    write, flush = os.write, _flush

    def send(obj):
        flush()
        data = json.dumps(obj).encode("utf-8")
        data = struct.pack(">I", len(data)) + data
        while data:
            data = data[write(fd, data):]

    return send


def _limits(cfg):
    mb = 1 << 20
    limits = [(resource.RLIMIT_AS, cfg["memory_mb"] * mb), (resource.RLIMIT_CPU, cfg["cpu_s"]),
              (resource.RLIMIT_FSIZE, cfg["fsize_mb"] * mb), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 256)]
    if cfg["tasks"] is not None:  # threads (fork is blocked); counted per uid and user namespace
        limits.append((resource.RLIMIT_NPROC, cfg["tasks"]))
    for lim, value in limits:
        resource.setrlimit(lim, (value, value))


def _guard():
    """The weak inner layer: disable destructive os/shutil/subprocess calls and writes outside cwd.

    Python code can take it apart (``posix``, ``_io``, ``importlib.reload``); it only stops accidents.
    """
    import io
    import shutil
    import subprocess

    realpath = os.path.realpath
    root = realpath(os.getcwd())

    def denied(name):
        def fn(*args, **kwargs):
            raise PermissionError(f"{name} is disabled in the tokstudy sandbox")
        return fn

    def inside(path, dir_fd=None):
        if isinstance(path, int):
            return True
        if dir_fd is not None:
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), os.fspath(path))
        p = realpath(os.fspath(path))
        return p == root or p.startswith(root + os.sep) or p == os.devnull

    _open, _os_open = builtins.open, os.open

    def safe_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not inside(file):
            raise PermissionError(f"writing outside the sandbox directory is disabled: {file!r}")
        return _open(file, mode, *args, **kwargs)

    def safe_os_open(path, flags, *args, dir_fd=None, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC) and not inside(path, dir_fd):
            raise PermissionError(f"writing outside the sandbox directory is disabled: {path!r}")
        return _os_open(path, flags, *args, dir_fd=dir_fd, **kwargs)

    builtins.open = io.open = safe_open
    os.open = safe_os_open

    def confine(name, fn, npaths):
        def confined(*args, **kwargs):
            fds = (kwargs.get("src_dir_fd", kwargs.get("dir_fd")), kwargs.get("dst_dir_fd", kwargs.get("dir_fd")))
            # strict=False: a call may pass fewer path arguments than npaths (fds always has two)
            if not all(inside(a, fd) for a, fd in zip(args[:npaths], fds, strict=False)):
                raise PermissionError(f"{name} outside the sandbox directory is disabled: {args[:npaths]!r}")
            return fn(*args, **kwargs)
        return confined

    for name, npaths in (("remove", 1), ("unlink", 1), ("rmdir", 1), ("removedirs", 1), ("rename", 2),
                         ("renames", 2), ("replace", 2), ("truncate", 1), ("chmod", 1), ("mkdir", 1),
                         ("makedirs", 1), ("link", 2), ("symlink", 2), ("utime", 1)):
        if hasattr(os, name):
            setattr(os, name, confine("os." + name, getattr(os, name), npaths))
    shutil.rmtree = confine("shutil.rmtree", shutil.rmtree, 1)
    shutil.move = confine("shutil.move", shutil.move, 2)
    for name in ("lchmod", "chown", "fchown", "lchown", "chroot", "chdir", "fchdir", "mkfifo", "mknod", "kill",
                 "killpg", "fork", "forkpty", "vfork", "system", "popen", "putenv", "unsetenv", "setuid", "setgid",
                 "seteuid", "setegid", "setreuid", "setregid", "setresuid", "setresgid", "setsid", "setpgid", "nice",
                 "plock", "_exit", "abort", "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp",
                 "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
                 "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            setattr(os, name, denied("os." + name))
    shutil.chown = denied("shutil.chown")
    for name in ("Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
        setattr(subprocess, name, denied("subprocess." + name))
    for name in ("exit", "quit", "help", "breakpoint"):
        if hasattr(builtins, name):
            setattr(builtins, name, denied(name))
    for name in ("ctypes", "_ctypes", "socket", "_socket", "ssl", "_ssl", "resource", "psutil", "multiprocessing",
                 "_multiprocessing", "_posixsubprocess", "pty", "tkinter"):
        sys.modules[name] = None  # importing them now raises ImportError


def _error(exc):
    return f"{type(exc).__name__}: {exc}"[:2000]


def main():
    in_fd, out_fd = int(sys.argv[1]), int(sys.argv[2])
    send, receive, exit_now = _sender(out_fd), _receive, os._exit
    literal_eval, repr_, callable_ = ast.literal_eval, repr, callable
    send({"hello": True})
    cfg = receive(in_fd)
    _limits(cfg)
    if cfg["guard"]:
        _guard()
    ns = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        exec(compile(cfg.pop("program"), "<candidate>", "exec"), ns)
    except BaseException as exc:  # SystemExit included: leaving early is not passing
        send({"ok": False, "error": _error(exc)})
        exit_now(1)
    names = sorted(k for k, v in ns.items() if isinstance(k, str) and not k.startswith("__") and callable_(v)
                   and not isinstance(v, type(os)))
    modules = {k: v.__name__ for k, v in ns.items() if isinstance(k, str) and isinstance(v, type(os))}
    send({"ok": True, "names": names, "modules": modules})
    while True:
        try:
            req = receive(in_fd)
        except EOFError:
            exit_now(0)
        try:
            args, kwargs = literal_eval(req["args"]), literal_eval(req["kwargs"])
            value = ns[req["call"]](*args, **kwargs)
            reply = {"ok": True, "value": repr_(value), "args": repr_(args)}
        except BaseException as exc:  # the trusted side decides what a failed call means
            reply = {"ok": False, "error": _error(exc)}
        send(reply)


if __name__ == "__main__":
    main()
