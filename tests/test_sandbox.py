"""tokstudy.sandbox: planted hostile completions cannot forge a pass, damage, leak, or outlive the evaluation."""

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

from tokstudy import problems as E
from tokstudy import sandbox as S

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None and os.geteuid() != 0,
    reason="bubblewrap (bwrap) is not installed and we are not root to install it: apt-get install bubblewrap",
)

HE0 = E.humaneval_problems(1)[0]  # has_close_elements(numbers, threshold) -> bool
WRONG = "    return None\n"


def body(code: str) -> str:
    """``code`` (dedented) as the body of HumanEval/0's function, i.e. the completion."""
    return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ") + "\n"


def judge(completion: str, task: S.Task = HE0.task(), **limits) -> S.Verdict:
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
    "import importlib, os, shutil\nimportlib.reload(os)\nshutil = importlib.reload(shutil)\nshutil.rmtree(os.path.dirname(P))",
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
        out = [S.judge(task, c, S.Limits(timeout_s=5.0)).status for c in json.loads(sys.argv[2])]
        print(json.dumps(out))
    """))
    env = {**os.environ, "TOKSTUDY_TEST_SECRET": secret}
    r = subprocess.run([sys.executable, str(script), json.dumps(task.__dict__),
                        json.dumps([steal, kill, "    return " + repr(secret) + "\n"])],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == ["failed", "failed", "passed"]


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
    code = body("""
                   import os
                   assert os.getcwd() == os.environ['HOME'] == '/tmp' and os.listdir('.') == []
                   open('a', 'w').write('hi')
                   assert open('a').read() == 'hi'
                   assert os.getuid() == 65534 and os.getgid() == 65534
                   caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')]
                   assert caps == ['CapEff:\\t0000000000000000\\n'], caps
                   assert sorted(int(p) for p in os.listdir('/proc') if p.isdigit())[:1] == [1]
                   assert open('/proc/1/comm').read().strip() == 'bwrap'
                   return False""")
    v = judge(code)
    assert v.status == "failed" and v.detail.startswith("AssertionError"), v.detail  # only check()'s assert failed


# --------------------------------------------------------------------------- backends


def test_without_bwrap_evaluation_refuses_and_names_the_install_command(monkeypatch):
    monkeypatch.setattr(S, "_CHECKED", {})
    monkeypatch.setattr(S.shutil, "which", lambda name: None)
    with pytest.raises(S.SandboxError, match="apt-get install bubblewrap"):
        E.check([HE0], [HE0.reference])
    with pytest.raises(S.SandboxError, match="unknown sandbox backend"):
        S.check_backend("docker")


def test_guard_is_an_explicit_opt_in_with_a_recorded_warning(caplog):
    res = E.check([HE0, HE0], [HE0.reference, WRONG], sandbox_backend="guard")
    assert [r.status for r in res.results] == ["passed", "failed"]
    assert "WITHOUT OS isolation" in caplog.text
    [row] = E.pass_rows(res)
    assert row["sandbox"] == "guard" and "WITHOUT OS isolation" in row["sandbox_warning"]
    assert [p["sandbox"] for p in res.per_problem()] == ["guard", "guard"]
    assert "sandbox_warning" not in E.pass_rows(E.check([HE0], [HE0.reference]))[0]


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
    res = E.check(problems, [p.reference for p in problems], workers=2, timeout=10.0)
    assert [t for t, r in zip(res.task_ids, res.results) if not r.passed] == []
    assert res.pass_at_1 == 1.0 and res.backend == "bwrap"
