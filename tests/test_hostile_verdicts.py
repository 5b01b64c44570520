"""Hostile solutions that try to earn a verdict without doing the task (issue 9, items 1-4, 7, 12).

Each attack is a program a policy could write; each test asserts the honest
outcome or a detected error, never a pass. Safe where the sandbox is broken:
the programs end by themselves, write only to their own descriptors, and
signal nothing.
"""

import pytest

import rewards
import sandbox
from sandbox import Job, Limits
from tests.sandbox_util import FAST, nothing_left_behind, run  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("nothing_left_behind")
TESTS = ["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]
CHECK = (
    "def check(candidate):\n    assert candidate(1) == 1\n    assert candidate(2) == 2\n    assert candidate(3) == 3\n"
)

# ---------------------------------------------------------------- 1. shrinking the denominator

# passes the test it knows (f(1) == 1), then ends the child on the next call
ENDINGS = {
    "os._exit": "os._exit(0)",
    "crash": "import ctypes\n    ctypes.string_at(0)",
    "hang": "time.sleep(60)",
    "output flood": "while True:\n        sys.stdout.write('x' * 65536)",
    "kills its own process group": "os.killpg(0, 9)",
}


def _ender(ending: str) -> str:
    return f"import os, sys, time\ndef f(x):\n    if x == 1:\n        return 1\n    {ENDINGS[ending]}\n"


@pytest.mark.parametrize("ending", ENDINGS)
def test_ending_the_child_after_a_known_test_counts_every_planned_test(pool, ending):
    r = run(pool, _ender(ending), mode="asserts", tests=TESTS)
    assert (r.passed, r.total) == (1, 3) and r.status not in ("passed", *sandbox.NOT_VERDICTS)
    assert [t.message.split(":")[0] for t in r.tests] == ["", "did not finish", "did not run"]


@pytest.mark.parametrize("ending", ["os._exit", "hang", "output flood"])
def test_ending_the_child_inside_a_check_block(pool, ending):
    r = run(pool, _ender(ending), mode="asserts", tests=CHECK, entry_point="f")
    assert (r.passed, r.total) == (1, 3) and r.status not in ("passed", *sandbox.NOT_VERDICTS)
    assert [t.message.split(":")[0] for t in r.tests] == ["", "did not finish", "did not run"]
    looped = "def check(candidate):\n    for i in range(1, 4):\n        assert candidate(i) == i\n"
    r = run(pool, _ender(ending), mode="asserts", tests=looped, entry_point="f")
    assert (r.passed, r.total) == (1, 2)


def test_the_pass_rate_is_over_every_planned_test():
    fast = Limits(wall_time=3, cpu_time=2)
    assert rewards.score(_ender("os._exit"), TESTS, limits=fast).reward == pytest.approx(1 / 3)
    check = {"check": CHECK, "entry_point": "f"}
    assert rewards.score(_ender("os._exit"), check, limits=fast).reward == pytest.approx(1 / 3)
    honest = "def f(x):\n    return x\n"
    assert rewards.score(honest, TESTS, limits=fast).reward == rewards.score(honest, check, limits=fast).reward == 1.0


def test_raising_before_the_tests_fails_every_planned_test(pool):
    r = run(pool, "raise SystemExit(0)\n", mode="asserts", tests=TESTS)
    assert (r.status, r.passed, r.total) == ("error", 0, 3)
    r = run(pool, "def g():\n    pass\n", mode="asserts", tests=TESTS, entry_points=["f"])
    assert (r.status, r.passed, r.total) == ("failed", 0, 3) and r.message == "the solution does not define f"


# ---------------------------------------------------------------- 2. names the tests call


@pytest.mark.parametrize(
    "helper",
    [
        "def isclose(*a, **k):\n    return True\n",
        "class isclose:\n    def __init__(self, *a, **k):\n        pass\n"
        "    def __bool__(self):\n        return True\n",
        "isclose = lambda *a, **k: True\n",
    ],
)
def test_a_solution_cannot_supply_the_names_the_tests_judge_with(pool, helper):
    code = helper + "def f(x):\n    return 0\n"
    r = run(pool, code, mode="asserts", tests=["assert isclose(f(3), 7)"], entry_points=["f"])
    assert (r.status, r.passed) == ("failed", 0) and "NameError" in r.tests[0].message
    check = "def check(candidate):\n    assert isclose(candidate(3), 7)\n"
    r = run(pool, code, mode="asserts", tests=check, entry_point="f")
    assert (r.status, r.passed) == ("failed", 0)
    assert rewards.score(code, ["assert isclose(f(3), 7)"], entry_points=["f"], limits=FAST).reward == 0.0


@pytest.mark.parametrize(
    "fake",
    [
        "class math:\n    isclose = staticmethod(lambda *a, **k: True)\n",
        "import math\nmath.isclose = lambda *a, **k: True\n",
        "import types\nmath = types.SimpleNamespace(isclose=lambda *a, **k: True)\n",
    ],
)
def test_modules_the_tests_use_are_the_judges(pool, fake):
    code = fake + "def f(x):\n    return 0.0\n"
    for entry_points in ([], ["f"]):
        r = run(pool, code, mode="asserts", tests=["assert math.isclose(f(3), 7.0)"], entry_points=entry_points)
        assert (r.status, r.passed) == ("failed", 0)


@pytest.mark.parametrize(
    "tests",
    [
        ["assert math.isclose(f(3), 7.0, rel_tol=1e-9)"],  # MBPP: the solution imports math, the test uses it
        ["import math\nassert math.isclose(f(3), 7.0)"],
        ["from math import isclose\nassert isclose(f(3), 7.0)"],
        "def check(candidate):\n    import math\n    assert math.isclose(candidate(3), 7.0)\n",
    ],
)
def test_honest_tests_that_import_pass(pool, tests):
    code = "import math\ndef f(x):\n    return 2.0 * x + 1\n"
    r = run(pool, code, mode="asserts", tests=tests, entry_point="f" if isinstance(tests, str) else None)
    assert (r.status, r.passed, r.total) == ("passed", 1, 1)


def test_builtins_stay_the_judges(pool):
    code = "def abs(x):\n    return 3\nlen = lambda x: 3\nsorted = lambda x: [1, 2, 3]\ndef f(x):\n    return [x]\n"
    tests = ["assert abs(f(-3)[0]) == 3", "assert len(f(3)) == 3", "assert sorted(f(3)) == [1, 2, 3]"]
    r = run(pool, code, mode="asserts", tests=tests)
    assert (r.status, r.passed) == ("failed", 1)  # only abs(-3) == 3 holds, with the judge's abs


# ---------------------------------------------------------------- 3 and 7: what the child says

# Finds the 16-byte bytes objects it can reach from its own stack (frames, their referents,
# closures; not through modules): a search a Python program can make without reading raw memory.
FORGE = """
import collections, gc, os, sys, types, msgspec

def nonces():
    seen, found, todo = set(), [], collections.deque()
    frame = sys._getframe()
    while frame is not None:
        todo.extend([frame, dict(frame.f_locals)])
        frame = frame.f_back
    while todo and len(seen) < 300000:
        obj = todo.popleft()
        if id(obj) in seen or isinstance(obj, types.ModuleType) or (type(obj) is dict and "__builtins__" in obj):
            continue
        seen.add(id(obj))
        if type(obj) is bytes and len(obj) == 16:
            found.append(obj)
        if type(obj) in (str, bytes, int, float):
            continue
        try:
            todo.extend(gc.get_referents(obj))
        except Exception:
            pass
    return found

def forge(message, fd=4):
    for nonce in nonces() or [b"0" * 16]:
        body = msgspec.msgpack.encode({**message, "nonce": nonce})
        try:
            os.write(fd, len(body).to_bytes(4, "big") + body)
        except OSError:
            pass
"""
VALUE_7 = {"t": "int", "v": 7}


@pytest.mark.parametrize(
    "claim",
    [
        {"abs": {"value": {"t": "function", "v": "abs"}, "handle": 1}},
        {"isinstance": {"value": {"t": "function", "v": "x"}, "handle": 1}, "f": {"value": VALUE_7}},
        {"f": {"value": {"t": "function", "v": "f"}, "handle": 1}, "len": {"value": VALUE_7}},
    ],
)
def test_the_child_cannot_add_names_to_the_tests(pool, claim):
    code = FORGE + f"forge({{'type': 'ready', 'names': {claim!r}}})\nos._exit(0)\ndef f(x):\n    return 0\n"
    r = run(pool, code, mode="asserts", tests=["assert abs(f(-3)) == 3"], entry_points=["f"])
    assert r.status == "error" and r.passed == 0 and "did not ask for" in r.message


@pytest.mark.parametrize(
    "attack",
    [
        # answers sent before the judge asks: each is refused, whatever nonce it carries
        "forge({'type': 'returned', 'value': {'t': 'int', 'v': 3}})",
        "forge({'type': 'ready'})\nforge({'type': 'ready'})",
        # patches on the child's reporting path
        "import sandbox.child\nsandbox.child._Objects.answer = lambda self, obj: (sandbox.child.Value('int', 3), 0)",
        "import sandbox.child\nsandbox.child._writer = lambda *a: None",
        "import tracer\nsys.modules['tracer.encode'].Encoder._encode = lambda self, obj, depth: tracer.Value('int', 3)",
        "os.write = lambda fd, data: len(data)",
        "import msgspec.structs\nmsgspec.structs.replace = lambda m, **k: m",
    ],
)
def test_forged_answers_in_asserts_mode_are_detected(pool, attack):
    code = FORGE + attack + "\ndef f(x):\n    return 0\n"
    r = run(pool, code, mode="asserts", tests=["assert f(-3) == 3"])
    assert r.status == "error" and r.passed == 0 and r.tampered


@pytest.mark.parametrize(
    "patch",
    [
        "import sandbox.wire\nsandbox.wire.write = lambda *a: None\nsandbox.wire.pack = lambda m: b''",
        "import msgspec\nmsgspec.msgpack.Encoder = None\nmsgspec.msgpack.encode = lambda *a: b''",
    ],
)
def test_patches_of_what_the_child_bound_before_the_code_change_nothing(pool, patch):
    r = run(pool, patch + "\ndef f(x):\n    return 0\n", mode="asserts", tests=["assert f(-3) == 3"])
    assert (r.status, r.tests[0].message, r.tampered) == ("failed", "expected 3, got 0", [])


@pytest.mark.parametrize(
    "attack",
    [
        # a second result after the real one, or a forged one before it
        "forge({'type': 'returned', 'value': {'t': 'int', 'v': 7}})",
        # a made-up trace: lines the code does not have
        "forge({'type': 'returned', 'value': {'t': 'int', 'v': 7}, 'trace': tracer.Trace("
        "[tracer.Step(0, 999)], [tracer.Frame(0, 'f', '<solution>', 1, 0)], 'settrace', '3').to_msgpack()})"
        "\nos._exit(0)",
        # a trace that disagrees with its message
        "forge({'type': 'returned', 'value': {'t': 'int', 'v': 7}, 'trace': tracer.Trace("
        "[], [], 'settrace', '3', returned=tracer.Value('int', 8)).to_msgpack()})\nos._exit(0)",
        # the encoder or the trace's writer replaced
        "import tracer.schema\ntracer.schema.Trace.to_msgpack = lambda self: b''",
        "import tracer.run\ntracer.run.trace = lambda *a, **k: None",
    ],
)
def test_forged_results_of_programs_are_detected(pool, attack):
    code = "import tracer\n" + FORGE + attack + "\ndef f(x):\n    return x\n"
    r = pool.run(Job(mode="call", code=code, call="f(3)", trace=True, limits=FAST))
    assert r.status == "error" and r.tampered


@pytest.mark.parametrize(
    "search",
    [
        # where the nonce was before: the spec on the child's stack, a JobSpec found by gc
        "f = sys._getframe()\nwhile f:\n    s = f.f_locals.get('spec')\n    if s is not None and s.nonce:\n"
        "        found.append(s.nonce)\n    f = f.f_back\n",
        "for o in gc.get_objects():\n    if type(o).__name__ == 'JobSpec' or (type(o) is bytes and len(o) == 16):\n"
        "        found.append(getattr(o, 'nonce', o))\n",
    ],
)
def test_the_nonce_is_not_where_plain_code_looks(pool, search):
    code = "import gc, sys\nfound = []\n" + search + "def f():\n    return [n for n in found if n]\n"
    r = run(pool, code, call="f()")
    assert r.status == "ok" and sandbox.to_python(r.value) == []


# ---------------------------------------------------------------- 4. tests that test nothing


@pytest.mark.parametrize(
    "tests",
    [
        ["f(3)", "f(4)"],
        {"check": "def check(candidate):\n    candidate(3)\n", "entry_point": "f"},
        {"check": "def check(candidate):\n    candidate(3)\n    candidate(4)\n", "entry_point": "f"},
    ],
)
def test_tests_that_assert_nothing_are_an_invalid_task_for_a_pass_rate(tests):
    s = rewards.score("def f(*a):\n    pass\n", tests, limits=FAST)
    assert (s.status, s.reward, s.masked) == ("invalid_task", None, True) and "nothing" in s.message
    weighted = rewards.score("def f(*a):\n    pass\n", tests, "None", question="output", weights={"tests": 1})
    assert weighted.masked
    assert rewards.score("def f(*a):\n    pass\n", tests, "None", question="output").reward == 1.0  # as an input


def test_a_bare_call_in_asserts_mode_is_no_pass(pool):
    r = run(pool, "def f(*a):\n    pass\n", mode="asserts", tests=["f(3)"])
    assert (r.status, r.passed, r.total) == ("failed", 0, 0) and r.message == "no assertion ran"


# ---------------------------------------------------------------- 12. class-based tests

SOLUTION = (
    "class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, n in enumerate(nums):\n"
)
SOLUTION += (
    "            if target - n in seen:\n                return [seen[target - n], i]\n            seen[n] = i\n"
)
MIN_STACK = (
    "class MinStack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n"
    "        self.items.append((x, min(x, self.items[-1][1]) if self.items else x))\n"
    "    def pop(self):\n        self.items.pop()\n    def getMin(self):\n        return self.items[-1][1]\n"
)
LINKED = (
    "class ListNode:\n    def __init__(self, val=0, next=None):\n        self.val = val\n        self.next = next\n"
    "def reverse(head):\n    prev = None\n    while head:\n        head.next, prev, head = prev, head, head.next\n"
    "    return prev\n"
)
TO_LIST = "def to_list(node):\n    out = []\n    while node:\n        out.append(node.val)\n        node = node.next\n"
TO_LIST += "    return out\n"


@pytest.mark.parametrize(
    ("code", "tests"),
    [
        (
            SOLUTION,
            ["assert Solution().twoSum([2, 7, 11, 15], 9) == [0, 1]", "assert Solution().twoSum([3, 3], 6) == [0, 1]"],
        ),
        (MIN_STACK, ["s = MinStack()\ns.push(3)\ns.push(1)\nassert s.getMin() == 1\ns.pop()\nassert s.getMin() == 3"]),
        (LINKED, [TO_LIST + "assert to_list(reverse(ListNode(1, ListNode(2, ListNode(3))))) == [3, 2, 1]"]),
        (
            "class P:\n    def __init__(self, a):\n        self.a = a\n"
            "def total(ps):\n    return sum(p.a for p in ps)\n",
            ["assert total([P(1), P(2), P(3)]) == 6", "assert P(4).a == 4", "assert hasattr(P(1), 'a')"],
        ),
        ("def f(n):\n    yield from range(n)\n", ["assert list(f(3)) == [0, 1, 2]", "assert 2 in f(3)"]),
        (
            "class Box:\n    def __init__(self, xs):\n        self.xs = xs\n"
            "    def __len__(self):\n        return len(self.xs)\n"
            "    def __getitem__(self, i):\n        return self.xs[i]\n",
            ["assert len(Box([1, 2])) == 2", "assert Box([5, 6])[1] == 6", "assert not Box([])"],
        ),
    ],
    ids=["leetcode", "design class", "linked list", "objects as arguments", "generator", "container protocol"],
)
def test_class_based_tests_pass(pool, code, tests):
    r = run(pool, code, mode="asserts", tests=tests)
    assert (r.status, r.passed, r.total) == ("passed", len(tests), len(tests)), r.tests


@pytest.mark.parametrize(
    "returned",
    [
        "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\nR = AlwaysEqual()",
        "class Sneaky:\n    def __getattr__(self, name):\n        return lambda *a: True\nR = Sneaky()",
        "R = type('T', (), {'__eq__': lambda s, o: True, '__hash__': lambda s: 0})()",
    ],
)
def test_the_childs_objects_stay_in_the_child(pool, returned):
    code = returned + "\nclass Solution:\n    def twoSum(self, nums, target):\n        return R\n"
    tests = ["assert Solution().twoSum([2, 7], 9) == [0, 1]", "assert Solution().twoSum([1], 1).__eq__([0])"]
    r = run(pool, code, mode="asserts", tests=tests)
    assert r.status == "failed" and r.passed == 0 and r.tests[0].message.startswith("expected [0, 1], got ")
