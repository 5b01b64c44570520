"""Every difference between the Python versions the tracer runs on (3.11 to 3.13), in one place.

Other modules ask this one instead of reading `sys.version_info`. Opcode names
that exist on some versions only need no test: `codeinfo`'s tables list the
names of every supported version, and a name this interpreter lacks never
occurs in its bytecode.
"""

from __future__ import annotations

import dis
import sys

PYVERSION = sys.version_info[:3]
PYTHON = "{}.{}.{}".format(*PYVERSION)  # "3.12.1", as Trace.python

# sys.monitoring (PEP 669): the "monitoring" backend, and the default one.
HAS_MONITORING = PYVERSION >= (3, 12)

# PEP 709: list, dict and set comprehensions run inline in their function's
# frame (saving and restoring their loop variables with LOAD_FAST_AND_CLEAR);
# before 3.12 each has a frame of its own (`<listcomp>` ...).
INLINED_COMPREHENSIONS = PYVERSION >= (3, 12)

# The settrace backend tells how a frame left from the instruction it is at
# when its "return" event comes: a normal return, a yield, or else an exception.
RETURN_OPCODES = frozenset(dis.opmap[name] for name in ("RETURN_VALUE", "RETURN_CONST") if name in dis.opmap)
YIELD_OPCODE = dis.opmap["YIELD_VALUE"]
RESUME_OPCODE = dis.opmap["RESUME"]
# 3.13 reports a yield at the RESUME that follows YIELD_VALUE, earlier versions at YIELD_VALUE.
YIELD_REPORTED_AT_RESUME = PYVERSION >= (3, 13)
