"""tokstudy.sandbox: planted hostile completions cannot forge a pass, damage, leak, or outlive the evaluation."""

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tokstudy import passk
from tokstudy import problems as E
from tokstudy import sandbox as S

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None and os.geteuid() != 0,
    reason="bubblewrap (bwrap) is not installed and we are not root to install it: apt-get install bubblewrap",
)

HE0 = E.humaneval_problems(1)[0]  # has_close_elements(numbers, threshold) -> bool
TASK0 = passk.task(HE0)
WRONG = "    return None\n"


def body(code: str) -> str:
    """``code`` (dedented) as the body of HumanEval/0's function, i.e. the completion."""
    return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ") + "\n"


def judge(completion: str, task: S.Task = TASK0, **limits) -> S.Verdict:
    compile(task.prompt + completion, "<completion>", "exec")  # an attack with a typo would prove nothing
    return S.judge(task, completion, S.Limits(**{"timeout_s": 5.0, **limits}))


def tasks_named(token: str) -> list[int]:
    """Host pids of every live thread/process whose name (``comm``) is ``token``."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/task/[0-9]*/comm"):
        try:
            if comm.read_text().strip() == token:
                found.append(int(comm.parent.parent.parent.name))
        except OSError:
            pass
    return found


@pytest.fixture
def sentinels(tmp_path):
    """Files outside the work dir: one in the host /tmp (hidden in the sandbox), one in /var/tmp (read-only there)."""
    var = Path(tempfile.mkdtemp(prefix="tokstudy-sentinel-", dir="/var/tmp"))
    files = [tmp_path / "sentinel.txt", var / "sentinel.txt"]
    for f in files:
        f.write_text("precious")
    yield files
    shutil.rmtree(var, ignore_errors=True)


def test_canonical_passes_wrong_fails_and_the_backend_is_recorded():
    assert judge(HE0.reference).passed
    v = judge(WRONG)
    assert v.status == "failed" and v.backend == "bwrap" and "AssertionError" in v.detail


# --------------------------------------------------------------------------- forging a pass


@pytest.mark.parametrize("code", [
    # the old runner's nonce, read back from its own process and written to the result pipe
    """
       import sys, os
       os.write(int(sys.argv[2]), b'\\x00\\x00\\x00\\x0f{"ok": true, "value": "True", "args": "()"}')
       m = sys.modules['__main__']
       os.write(int(sys.argv[1]), getattr(m, 'nonce', b'x'))
       return None""",
    # answers the tests would accept, pushed into the reply channel ahead of the calls
    """
       import sys, os, json, struct
       for _ in range(50):
           d = json.dumps({"ok": True, "value": "True", "args": "([], 0.0)"}).encode()
           os.write(int(sys.argv[2]), struct.pack('>I', len(d)) + d)
       return None""",
    # an object equal to everything
    """
       class Always:
           def __eq__(self, other): return True
           def __ne__(self, other): return False
       return Always()""",
    # an int subclass whose repr is code
    """
       class B(int):
           def __repr__(self): return '__import__("os").system("touch /tmp/pwned")'
       return B(1)""",
    # tracing/profiling hooks and an early clean exit
    """
       import sys
       sys.settrace(lambda *a: None); sys.setprofile(lambda *a: None)
       sys.exit(0)""",
    """
       import posix
       posix._exit(0)""",
    "raise SystemExit(0)",
])
def test_a_wrong_completion_cannot_forge_a_pass(code):
    v = judge(body(code))
    assert v.status == "failed", v.detail
    assert not Path("/tmp/pwned").exists()


def test_results_are_rebuilt_from_literals_only():
    assert S.literal("[1, (2.5, 'a'), {3: None}, {4}, b'x', -inf, 1j]") == [1, (2.5, "a"), {3: None}, {4}, b"x",
                                                                              float("-inf"), 1j]
    for bad in ("__import__('os')", "<object at 0x1>", "f(1)", "[1, [2, [3, x]]]", 7):
        with pytest.raises(S.CandidateError):
            S.literal(bad)


def test_mbpp_completion_cannot_redefine_what_the_asserts_use():
    task = S.Task(prompt='"""\nf\n"""\n', tests="assert set(f()) == {1, 2}\nassert sorted(f()) == [1, 2]\n")
    honest = "def f():\n    return [2, 1]\n"
    cheat = "def f():\n    return []\ndef set(x):\n    return {1, 2}\nsorted = lambda x: [1, 2]\n"
    assert judge(honest, task).passed
    assert judge(cheat, task).status == "failed"
    uses_math = S.Task(prompt='"""\nf\n"""\n', tests="assert math.isclose(f(), 0.5)\n")
    assert judge("import math\ndef f():\n    return math.sqrt(0.25)\n", uses_math).passed
    v = judge("import this as math\ndef f():\n    return 0.5\n", uses_math)  # only TEST_MODULES are imported here
    assert v.status == "failed" and "NameError" in v.detail


# --------------------------------------------------------------------------- the machine is safe


@pytest.mark.parametrize("code", [
    "import posix\nposix.unlink(P)",
    "import importlib, os\nos = importlib.reload(os)\nos.remove(P)",
    "import io\nio.FileIO(P, 'w').write(b'clobbered')",
    "import _io\n_io.open(P, 'w').write('clobbered')",
    "import sys\nfor m in ('ctypes', '_ctypes'):\n    del sys.modules[m]\nimport ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\nassert libc.unlink(P.encode()) == 0, ctypes.get_errno()",
    "import posix, os\nd = posix.open(os.path.dirname(P), os.O_RDONLY)\nposix.unlink(os.path.basename(P), dir_fd=d)",
    "import posix, os\nfd = posix.open(os.path.basename(P), os.O_WRONLY | os.O_TRUNC, dir_fd=posix.open("
    "os.path.dirname(P), os.O_RDONLY))",
    "import importlib, os, shutil\nimportlib.reload(os)\nshutil = importlib.reload(shutil)\n"
    "shutil.rmtree(os.path.dirname(P))",
])
def test_files_outside_the_work_dir_are_untouched(sentinels, code):
    for victim in sentinels:
        v = judge(body(f"P = {str(victim)!r}\n{code}\nreturn True"))
        assert v.status == "failed", v.detail
        assert victim.read_text() == "precious"


def test_no_process_survives_the_verdict():
    token = "tks" + uuid.uuid4().hex[:10]
    fork = f"""
               import posix, time
               for _ in range(3):
                   try:
                       if posix.fork() == 0:
                           posix.setsid()
                           if posix.fork() == 0:
                               posix.write(posix.open('/proc/self/comm', posix.O_WRONLY), {token!r}.encode())
                               time.sleep(60)
                           posix._exit(0)
                   except OSError:
                       pass
               return None"""
    v = judge(body(fork))
    time.sleep(0.2)
    survivors = tasks_named(token)
    for pid in survivors:  # do not leave them behind when this test fails
        subprocess.run(["kill", "-9", str(pid)], check=False)
    assert v.status == "failed" and survivors == [], v.detail


def test_a_thread_outliving_main_dies_with_the_sandbox():
    token = "tkt" + uuid.uuid4().hex[:10]
    program = f"""
        import threading, time
        def linger():
            import posix  # the guard's open() would refuse
            posix.write(posix.open('/proc/thread-self/comm', posix.O_WRONLY), {token!r}.encode())
            time.sleep(60)
        def f():
            threading.Thread(target=linger).start()
            time.sleep(0.3)
            return None
    """
    session = S.Session(S.Limits(timeout_s=10.0))
    try:
        session.load(textwrap.dedent(program))
        assert session.call("f") is None
        assert tasks_named(token) != []  # the thread runs (so the check below can fail)
    finally:
        session.close()
    time.sleep(0.2)
    assert tasks_named(token) == []


def test_no_network_even_to_the_host_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = f"""
                   import sys
                   for m in ('socket', '_socket'):
                       sys.modules.pop(m, None)
                   import socket, os
                   for ns in (os.getppid(),):  # the evaluator's namespace, as the old runner allowed
                       try:
                           fd = os.open(f'/proc/{{ns}}/ns/net', os.O_RDONLY)
                           os.setns(fd, 0)
                       except (OSError, AttributeError):
                           pass
                   s = socket.create_connection(('127.0.0.1', {port}), timeout=2)
                   s.sendall(b'leak')
                   return True"""
        v = judge(body(code))
        assert v.status == "failed", v.detail
        with pytest.raises(BlockingIOError):
            server.accept()


def test_the_evaluator_survives_and_its_environment_does_not_leak(tmp_path):
    """A separate evaluator process holds a secret in its environment; the completions try to kill it and read it."""
    secret = "s3cr3t-" + uuid.uuid4().hex
    steal = body("""
                    import os, glob
                    seen = repr(dict(os.environ))
                    for p in glob.glob('/proc/*/environ') + ['/proc/%d/environ' % os.getppid()]:
                        try:
                            seen += open(p, 'rb').read().decode(errors='replace')
                        except OSError:
                            pass
                    print(seen)
                    return seen""")
    kill = body("""
                   import posix, os, signal
                   for pid in (os.getppid(), 1, *range(2, 400)):
                       try:
                           posix.kill(pid, signal.SIGKILL)
                       except OSError:
                           pass
                   return None""")
    task = S.Task(prompt="def f():\n    'x'\n", tests=f"def check(c):\n    assert {secret!r} in c()\n", entry_point="f")
    script = tmp_path / "evaluator.py"
    script.write_text(textwrap.dedent("""
        import json, sys
        from tokstudy import sandbox as S
        task = S.Task(**json.loads(sys.argv[1]))
        out = [S.judge(task, c, S.Limits(timeout_s=5.0, output_kb=64)) for c in json.loads(sys.argv[2])]
        print(json.dumps([[v.status, v.detail] for v in out]))
    """))
    env = {**os.environ, "TOKSTUDY_TEST_SECRET": secret}
    r = subprocess.run([sys.executable, str(script), json.dumps(task.__dict__),
                        json.dumps([steal, kill, "    return " + repr(secret) + "\n"])],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    verdicts = json.loads(r.stdout.strip().splitlines()[-1])
    assert [status for status, _ in verdicts] == ["failed", "failed", "passed"]
    assert secret not in verdicts[0][1] and secret not in verdicts[1][1]


# --------------------------------------------------------------------------- nothing secret is readable


STEAL = """
    import posix, glob
    found = []
    for p in PATHS:
        for q in (p, '/proc/self/root' + p, '/proc/1/root' + p, *glob.glob('/proc/*/cwd/' + p.rsplit('/', 1)[-1])):
            try:
                fd = posix.open(q, posix.O_RDONLY)
                found.append(posix.read(fd, 1 << 20).decode(errors='replace'))
            except OSError as exc:
                found.append(repr(exc))
    print(*found, sep='\\n')
    return '\\n'.join(found)
"""


@pytest.fixture(params=["real_uid", "user_namespace"])
def uid_mode(request, monkeypatch):
    """Both ways the sandbox runs: as root, the host's real uid 65534; else (forced here) a user namespace."""
    if request.param == "real_uid" and not S.real_uid_mode():
        pytest.skip("the real-uid mode needs root with CAP_SYS_ADMIN")
    if request.param == "user_namespace":
        monkeypatch.setattr(S, "real_uid_mode", lambda: False)
    return request.param


def assert_unreadable(paths: list, secret: str) -> None:
    """A completion that returns (and prints) every file it reads fails, and ``secret`` is nowhere in its record."""
    task = S.Task(prompt="def f():\n    'x'\n", tests=f"def check(c):\n    assert {secret!r} in c()\n",
                  entry_point="f")
    v = judge(f"    PATHS = {[str(p) for p in paths]!r}\n" + body(STEAL), task, output_kb=64)
    assert v.status == "failed", v.detail
    assert "AssertionError" in v.detail and secret not in v.detail, v.detail


@pytest.fixture
def secret_files():
    """0600 files with a fresh secret, in the default temp dir, /var/tmp and under $HOME (owned by us: root in CI)."""
    secret = "s3cr3t-" + uuid.uuid4().hex
    dirs = [Path(tempfile.mkdtemp(prefix="tokstudy-secret-", dir=d))
            for d in (tempfile.gettempdir(), "/var/tmp", Path.home())]
    files = [d / "secret.txt" for d in dirs]
    for f in files:
        f.write_text(secret)
        f.chmod(0o600)
    yield files, secret
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def test_private_files_are_unreadable(uid_mode, secret_files):
    files, secret = secret_files
    assert all(f.read_text() == secret for f in files)  # we can read them
    assert_unreadable(files, secret)


@pytest.mark.skipif(not os.access("/etc/shadow", os.R_OK), reason="/etc/shadow is not readable to us either")
def test_etc_shadow_is_unreadable(uid_mode):
    first = Path("/etc/shadow").read_text().splitlines()[0]
    assert_unreadable(["/etc/shadow", "/etc/gshadow"], first)


def test_the_repo_is_unreadable(uid_mode):
    from tokstudy import paths

    params = paths.ROOT / "params.yaml"
    line = max(params.read_text().splitlines(), key=len)
    assert len(line) > 20
    assert_unreadable([params, Path(S.__file__), Path(S.__file__).with_name("params.py")], line)


def test_only_the_allow_list_is_visible(uid_mode):
    prefix = os.path.realpath(sys.base_prefix)
    allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr",
               prefix.split("/")[1]}
    code = body(f"""
                   import os, sys
                   assert set(os.listdir('/')) <= {allowed!r}, os.listdir('/')
                   assert set(os.listdir('/etc')) <= {{'ld.so.cache', 'localtime'}}, os.listdir('/etc')
                   assert sys.argv[0] == '-c' and sys.prefix == sys.base_prefix == {prefix!r}
                   assert [p for p in sys.path if p.endswith('site-packages') and os.listdir(p)] == [], sys.path
                   parent = os.path.dirname({prefix!r})
                   assert parent.startswith('/usr') or os.listdir(parent) == [os.path.basename({prefix!r})]
                   return False""")
    v = judge(code)
    assert v.status == "failed" and v.detail.startswith("AssertionError"), v.detail  # only check()'s assert failed


def run_as_nobody(program: str) -> subprocess.CompletedProcess:
    """``program`` (dedented) run by this interpreter as uid 65534, so its sandboxes use a user namespace."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root (to become uid 65534) and setpriv")
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {**os.environ, "PYTHONPATH": str(Path(S.__file__).parents[1])}
    probe = subprocess.run(drop + [sys.executable, "-c", "import tokstudy.sandbox"], capture_output=True,
                           text=True, env=env, check=False)
    if probe.returncode != 0:
        pytest.skip(f"uid 65534 cannot run this interpreter/package here ({probe.stderr.strip()[-200:]}); "
                    "e.g. it lives under /root (0700)")
    work = Path(tempfile.mkdtemp(prefix="tokstudy-nonroot-"))  # pytest's tmp_path is 0700
    work.chmod(0o755)
    script = work / "evaluator.py"
    script.write_text(textwrap.dedent(program))
    script.chmod(0o644)
    try:
        return subprocess.run(drop + [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                              env=env, check=False)
    finally:
        shutil.rmtree(work)


def test_a_non_root_evaluator_can_run_the_sandbox():
    """The evaluator itself as uid 65534: the sandbox must then work through a user namespace."""
    r = run_as_nobody("""
        from tokstudy import sandbox as S
        assert not S.real_uid_mode()
        print(S.run_program('import os\\nassert os.getuid() == 65534').status)
    """)
    assert r.returncode == 0 and r.stdout.strip() == "passed", r.stderr[-2000:]


# --------------------------------------------------------------------------- resources


def test_infinite_loop_times_out_and_slow_calls_hit_their_own_budget():
    t0 = time.monotonic()
    v = judge(body("while True:\n    pass"), timeout_s=1.0)
    assert v.status == "timeout" and time.monotonic() - t0 < 5
    t0 = time.monotonic()
    v = judge(body("import time\ntime.sleep(2)\nreturn False"), timeout_s=30.0, call_timeout_s=0.5)
    assert v.status == "timeout" and time.monotonic() - t0 < 5


@pytest.mark.parametrize("code, why", [
    ("x = bytearray(50 * 1024 ** 3)", "MemoryError"),
    ("import os\nwhile True:\n    os.fork()", "PermissionError"),
    ("import posix\nwhile True:\n    posix.fork()", "PermissionError"),
    ("for i in range(5 * 1024):\n    open(f'f{i}', 'wb').write(b'x' * (1 << 20))", "No space left"),
    ("open('big', 'wb').write(b'x' * (64 << 20))", "File too large"),
])
def test_resource_hogs_fail_without_harm(code, why):
    v = judge(body(code + "\nreturn True"), timeout_s=20.0, disk_mb=32, fsize_mb=16)
    assert v.status == "failed" and why in v.detail, v.detail
    assert judge(HE0.reference).passed


def test_prints_do_not_corrupt_the_protocol_and_the_output_tail_is_kept():
    loud = HE0.reference.replace("    for idx", "    print('x' * 100000)\n    for idx", 1)
    assert loud != HE0.reference and judge(loud).passed
    v = judge(body("for i in range(10000):\n    print('line', i)\nreturn None"), output_kb=1)
    assert v.status == "failed" and "line 9999" in v.detail and "line 1000\n" not in v.detail
    assert len(v.detail) < 1024 + 500


def test_in_place_changes_of_arguments_are_seen_by_the_tests():
    task = S.Task(prompt="def f(xs, d):\n    'sort xs in place'\n",
                  tests="def check(c):\n    xs, d = [3, 1, 2], {}\n    assert c(xs, d) is None\n"
                        "    assert xs == [1, 2, 3] and d == {'k': 1}\n", entry_point="f")
    assert judge("    xs.sort()\n    d['k'] = 1\n", task).passed
    assert judge("    return None\n", task).status == "failed"


def test_the_work_dir_is_a_private_tmpfs_and_the_process_is_unprivileged():
    ids = S.IDS if S.real_uid_mode() else range(S.NOBODY, S.NOBODY + 1)
    lim = S.Limits()
    code = body(f"""
                   import os
                   assert os.getcwd() == os.environ['HOME'] == '/tmp' and os.listdir('.') == []
                   open('a', 'w').write('hi')
                   assert open('a').read() == 'hi'
                   st = os.statvfs('/tmp')
                   assert (st.f_files, st.f_blocks * st.f_frsize) == ({lim.files}, {lim.disk_mb << 20}), st
                   assert os.getuid() == os.getgid() and os.getuid() in {ids!r}, os.getuid()
                   caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')]
                   assert caps == ['CapEff:\\t0000000000000000\\n'], caps
                   assert sorted(int(p) for p in os.listdir('/proc') if p.isdigit())[:1] == [1]
                   assert open('/proc/1/comm').read().strip() == 'bwrap'
                   return False""")
    v = judge(code)
    assert v.status == "failed" and v.detail.startswith("AssertionError"), v.detail  # only check()'s assert failed


# --------------------------------------------------------------------------- bounds on what one completion costs


def sandbox_call(program: str, **limits):
    """``f()`` of ``program`` (dedented) in a fresh sandbox: what the attack achieved, as ``f`` reports it."""
    with S.Session(S.Limits(**{"timeout_s": 20.0, **limits})) as session:
        session.load(textwrap.dedent(program))
        return session.call("f")


def test_a_huge_result_fails_fast_and_costs_the_evaluator_no_memory(tmp_path):
    """8 MB reprs are never read, let alone parsed (a 9 MB list cost the old evaluator 3 GB, 20 s of a 5 s budget)."""
    task = S.Task(prompt="def f():\n    'x'\n", tests="def check(c):\n    assert c() == 1\n", entry_point="f")
    completions = ["    return 1\n", "    return 'x' * (8 << 20)\n", "    return [0] * (3 << 20)\n"]
    script = tmp_path / "evaluator.py"
    script.write_text(textwrap.dedent("""
        import json, resource, sys, time
        from tokstudy import sandbox as S
        task = S.Task(**json.loads(sys.argv[1]))
        out = []
        for c in json.loads(sys.argv[2]):  # the honest one first: imports and the seccomp filter are in `before`
            before, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
            v = S.judge(task, c, S.Limits(timeout_s=5.0))
            grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10
            out.append([v.status, v.detail[:300], time.monotonic() - t0, grown_mb])
        print(json.dumps(out))
    """))
    r = subprocess.run([sys.executable, str(script), json.dumps(task.__dict__), json.dumps(completions)],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    honest, *attacks = json.loads(r.stdout.strip().splitlines()[-1])
    assert honest[0] == "passed", honest
    for status, detail, seconds, grown_mb in attacks:
        assert status == "failed" and f"over the {S.MAX_REPLY} byte limit" in detail, detail
        assert seconds < 5 and grown_mb < 64, (seconds, grown_mb)


def test_a_large_result_under_the_reply_cap_still_comes_back():
    task = S.Task(prompt="def f():\n    'x'\n", tests="def check(c):\n    assert c() == 'x' * 200000\n",
                  entry_point="f")
    assert len(json.dumps({"ok": True, "value": repr("x" * 200000), "args": "()"})) < S.MAX_REPLY
    assert judge("    return 'x' * 200000\n", task).passed


FILL_THE_WORK_DIR = """
    import posix
    def f():
        n = 0
        try:
            while n < 200000:
                posix.close(posix.open('f%d' % n, posix.O_CREAT | posix.O_WRONLY, 0o600))
                n += 1
        except OSError as exc:
            return n, str(exc)
        return n, ''
"""


def test_the_work_dir_caps_inodes_not_only_bytes(uid_mode):
    """Empty files take no space but an inode each (the old tmpfs took 200,000 in 1.6 s, and a million)."""
    n, error = sandbox_call(FILL_THE_WORK_DIR)
    files = S.Limits().files
    assert files - 16 <= n < files and "No space left on device" in error, (n, error)
    assert sandbox_call(FILL_THE_WORK_DIR, files=100)[0] < 100


THREADS = """
    import sys
    for m in ('ctypes', '_ctypes'):
        sys.modules.pop(m, None)
    import ctypes
    def f():  # raw threads: small stacks, no Python state, so the address space does not stop them
        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.create_string_buffer(64)
        libc.pthread_attr_init(attr)
        libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(16384))
        tid = ctypes.c_ulong()
        for n in range(5000):
            if libc.pthread_create(ctypes.byref(tid), attr, libc.pause, None):
                return n
        return 5000
"""


def test_threads_are_capped_per_sandbox():
    """Raw pthread_create made 5,000 threads in 0.5 s; now RLIMIT_NPROC under a uid of the sandbox's own."""
    if not S.real_uid_mode():
        pytest.skip("the real-uid mode needs root with CAP_SYS_ADMIN (the user-namespace mode: the next test)")
    tasks = S.Limits().tasks
    with S.Session(S.Limits(timeout_s=20.0)) as first:  # holds its threads while a second sandbox tries
        first.load(textwrap.dedent(THREADS))
        n = first.call("f")
        assert tasks - 4 <= n < tasks, n
        assert tasks - 4 <= sandbox_call(THREADS) < tasks  # a budget of its own, not what the first left over


def test_threads_are_capped_for_a_non_root_evaluator():
    """The user-namespace mode: RLIMIT_NPROC counts the sandbox's uid 65534 in its own namespace."""
    r = run_as_nobody(f"""
        import textwrap
        from tokstudy import sandbox as S
        with S.Session(S.Limits(timeout_s=20.0)) as session:
            session.load(textwrap.dedent({THREADS!r}))
            print(session.call("f"))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    tasks = S.Limits().tasks
    assert tasks - 4 <= int(r.stdout.strip().splitlines()[-1]) < tasks, r.stdout


def test_io_uring_is_blocked():
    """io_uring would run file and socket operations in kernel workers the seccomp filter never sees."""
    code = """
        import sys
        for m in ('ctypes', '_ctypes'):
            sys.modules.pop(m, None)
        import ctypes
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            params = ctypes.create_string_buffer(120)
            out = []
            for nr, args in ((425, (8, params)), (426, (-1, 0, 0, 0, None, 0)), (427, (-1, 0, None, 0))):
                ctypes.set_errno(0)  # io_uring_setup, io_uring_enter, io_uring_register
                out.append((libc.syscall(nr, *args), ctypes.get_errno()))
            return out
    """
    assert sandbox_call(code) == [(-1, errno.EPERM)] * 3


def test_a_sandbox_that_fails_to_start_fails_its_problem_and_the_run_goes_on(monkeypatch):
    S.check_backend("bwrap")  # the run's own check passed; then the machine runs out of pids
    popen, starts = subprocess.Popen, []

    def no_pid_for_the_second(*args, **kwargs):
        starts.append(args)
        if len(starts) == 2:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")  # fork() with no pid left
        return popen(*args, **kwargs)

    monkeypatch.setattr(S.subprocess, "Popen", no_pid_for_the_second)
    fds = len(os.listdir("/proc/self/fd"))
    verdicts = S.judge_all([TASK0] * 3, [HE0.reference] * 3, S.Limits(timeout_s=5.0), workers=1)
    assert [v.status for v in verdicts] == ["passed", "failed", "passed"]
    assert "could not start" in verdicts[1].detail and "Resource temporarily unavailable" in verdicts[1].detail
    assert len(os.listdir("/proc/self/fd")) == fds  # the failed start left no pipe or file open


# --------------------------------------------------------------------------- backends


def test_without_bwrap_evaluation_refuses_and_names_the_install_command(monkeypatch):
    monkeypatch.setattr(S, "_CHECKED", {})
    monkeypatch.setattr(S, "_TOOLS", {})
    monkeypatch.setattr(S.shutil, "which", lambda name, **kw: None)
    with pytest.raises(S.SandboxError, match="apt-get install bubblewrap"):
        passk.check([HE0], [HE0.reference])
    with pytest.raises(S.SandboxError, match="unknown sandbox backend"):
        S.check_backend("docker")


def fake_bwrap(tmp_path, monkeypatch, content: str) -> Path:
    """An executable ``bwrap`` with ``content``, first on the caller's PATH (not in /usr/bin:/bin), resolved afresh."""
    exe = tmp_path / "bin" / "bwrap"
    exe.parent.mkdir()
    exe.write_text(content)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ['PATH']}")
    monkeypatch.setattr(S, "_TOOLS", {})
    monkeypatch.setattr(S, "_CHECKED", {})
    return exe


def test_bwrap_is_resolved_once_to_an_absolute_path_and_used_everywhere(tmp_path, monkeypatch):
    calls, real = tmp_path / "calls", S.tool_path("bwrap")
    exe = fake_bwrap(tmp_path, monkeypatch, f'#!/bin/sh\necho "$1" >> {calls}\nexec {real} "$@"\n')
    assert S.check_backend("bwrap") == "bwrap" and S.tool_path("bwrap") == str(exe)
    assert S.run_program("x = 1").passed
    assert calls.read_text().split() == ["--version", "--tmpfs", "--tmpfs"]  # the check, the probe, the program


@pytest.mark.parametrize("content", ["\x7fELF not really\n", "#!/bin/sh\necho 'bwrap: broken' >&2\nexit 1\n"])
def test_a_bwrap_that_cannot_run_is_a_one_line_error_naming_it(tmp_path, monkeypatch, content):
    exe = fake_bwrap(tmp_path, monkeypatch, content)
    with pytest.raises(S.SandboxError) as err:
        passk.check([HE0], [HE0.reference])
    msg = str(err.value)
    assert str(exe) in msg and "apt-get install bubblewrap" in msg and "\n" not in msg, msg


def test_guard_is_an_explicit_opt_in_with_a_recorded_warning(caplog):
    res = passk.check([HE0, HE0], [HE0.reference, WRONG], passk.Judge(backend="guard"))
    assert [r.status for r in res.results] == ["passed", "failed"]
    assert "WITHOUT OS isolation" in caplog.text
    [row] = passk.pass_rows(res)
    assert row["sandbox"] == "guard" and "WITHOUT OS isolation" in row["sandbox_warning"]
    assert [p["sandbox"] for p in res.per_problem()] == ["guard", "guard"]
    assert "sandbox_warning" not in passk.pass_rows(passk.check([HE0], [HE0.reference]))[0]


def test_the_sandbox_setting_is_validated(tmp_path):
    import yaml

    from tokstudy import params, paths

    assert params.load("smoke").evaluate.sandbox == "bwrap"
    raw = yaml.safe_load((paths.ROOT / "params.yaml").read_text())
    raw["evaluate"]["sandbox"] = "none"
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(params.ParamsError, match="evaluate.sandbox"):
        params.load("smoke", path=bad)


@pytest.mark.slow
def test_all_164_canonical_humaneval_solutions_pass_in_bwrap():
    problems = E.humaneval_problems()
    assert len(problems) == 164
    res = passk.check(problems, [p.reference for p in problems], passk.Judge(S.Limits(timeout_s=10.0), workers=2))
    assert [t for t, r in zip(res.task_ids, res.results, strict=True) if not r.passed] == []
    assert res.pass_at_1 == 1.0 and res.backend == "bwrap"


@pytest.mark.slow
def test_the_params_memory_floor_runs_every_canonical_solution_and_less_does_not():
    """params.SANDBOX_MIN_MEMORY_MB is a measured floor: every canonical HumanEval solution passes there."""
    from tokstudy import params, passk, problems, sandbox

    probs = problems.humaneval_problems()
    at_floor = passk.check(probs, [p.reference for p in probs],
                           passk.Judge(sandbox.Limits(memory_mb=params.SANDBOX_MIN_MEMORY_MB)))
    assert at_floor.pass_at_1 == 1.0
    starved = passk.check(probs[:3], [p.reference for p in probs[:3]], passk.Judge(sandbox.Limits(memory_mb=10)))
    assert starved.pass_at_1 == 0.0
