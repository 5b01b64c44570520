"""`diff(old, new)`: the `Edit` that turns one encoding of a value into another.

The recorder stores it for a variable whose container value changed (in place,
or rebound to a container of the same kind), so that a step costs about what
it changed; `Edit.apply` (in `tracer.schema`, beside the format) is the way
back: `diff(old, new).apply(old) == new`, exactly. It works on encodings only
(`Value` trees), so it knows every kind the encoder makes.

Per container node: items of the same count (and the same dict keys) are
compared one by one, each changed item put whole or, when it is itself a
container of the same kind, edited inside; items of another count become one
splice of the run between the common prefix and suffix; attributes are set,
edited inside or dropped. A node whose kind, type, payload or id changed cannot
be edited: its parent puts it whole, and at the top `diff` returns None.
"""

from __future__ import annotations

from itertools import compress, count
from operator import and_, eq, ne
from typing import TypeVar

from .schema import Edit, Splice, Value

K = TypeVar("K", int, str)  # an item's index or an attribute's name

# The fields of a Value other than its contents: an edit keeps them, so they must be equal.
_SHELL = tuple(name for name in Value.__struct_fields__ if name not in ("items", "keys", "attrs", "more"))


def diff(old: Value, new: Value) -> Edit | None:
    """An Edit from `old` to `new` (empty when they are equal), or None when `new` must be stored whole."""
    if not _same_shell(old, new):
        return None
    edit = Edit()
    if not _fill(old, new, edit):
        return None
    return edit


def _same_shell(a: Value, b: Value) -> bool:
    if (a.items is None) != (b.items is None) or (a.keys is None) != (b.keys is None):
        return False
    if (a.attrs is None) != (b.attrs is None) or (a.more != b.more and a.items is None):
        return False
    return all(getattr(a, name) == getattr(b, name) for name in _SHELL)


def _fill(old: Value, new: Value, edit: Edit) -> bool:
    """Record into `edit` how `new` differs from `old` (same shell); False if the attributes cannot be edited."""
    before, after = old.items, new.items
    if before is not None and after is not None and (before != after or old.keys != new.keys):
        if len(before) == len(after) and old.keys == new.keys:
            for index in compress(count(), map(ne, before, after)):
                _item(index, before[index], after[index], edit.put, edit.edit)
        else:
            edit.splice = _splice(old.keys, new.keys, before, after)
    if old.more != new.more:
        edit.more = new.more
    if old.attrs is not None and new.attrs is not None and old.attrs != new.attrs:
        return _fill_attrs(old.attrs, new.attrs, edit)
    return True


def _item(key: K, a: Value, b: Value, put: dict[K, Value], edited: dict[K, Edit]) -> None:
    """A changed item or attribute: edited inside when it is a container of the same kind, else put whole."""
    inner = diff(a, b)
    if inner is None:
        put[key] = b
    else:
        edited[key] = inner


def _splice(
    old_keys: list[Value] | None, new_keys: list[Value] | None, before: list[Value], after: list[Value]
) -> Splice:
    """The run between the common prefix and the common suffix of the items (and dict keys)."""
    n, m = len(before), len(after)
    shortest = min(n, m)
    same = list(map(eq, before, after))  # as long as the shorter
    if old_keys is not None and new_keys is not None:
        same = list(map(and_, same, map(eq, old_keys, new_keys)))
    prefix = same.index(False) if False in same else shortest
    tail = list(map(eq, reversed(before), reversed(after)))
    if old_keys is not None and new_keys is not None:
        tail = list(map(and_, tail, map(eq, reversed(old_keys), reversed(new_keys))))
    tail = tail[: shortest - prefix]
    suffix = tail.index(False) if False in tail else len(tail)
    keys = None if new_keys is None else new_keys[prefix : m - suffix]
    return Splice(prefix, n - suffix, after[prefix : m - suffix], keys)


def _fill_attrs(before: dict[str, Value], after: dict[str, Value], edit: Edit) -> bool:
    kept = [name for name in before if name in after]
    added = [name for name in after if name not in before]
    if kept + added != list(after):
        return False  # the order changed otherwise than by removals and additions at the end
    edit.drop = [name for name in before if name not in after]
    for name in kept:
        a, b = before[name], after[name]
        if a is not b and a != b:
            _item(name, a, b, edit.attrs, edit.edit_attrs)
    for name in added:
        edit.attrs[name] = after[name]
    return True
