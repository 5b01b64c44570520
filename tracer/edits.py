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

from .schema import Edit, Splice, Value

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
            for index, (a, b) in enumerate(zip(before, after)):
                if a is not b and a != b:
                    inner = diff(a, b)
                    if inner is None:
                        edit.put[index] = b
                    else:
                        edit.edit[index] = inner
        else:
            edit.splice = _splice(old, new, before, after)
    if old.more != new.more:
        edit.more = new.more
    if old.attrs is not None and new.attrs is not None and old.attrs != new.attrs:
        return _fill_attrs(old.attrs, new.attrs, edit)
    return True


def _splice(old: Value, new: Value, before: list[Value], after: list[Value]) -> Splice:
    """The run between the common prefix and the common suffix of the items (and dict keys)."""
    old_keys, new_keys = old.keys, new.keys

    def same(i: int, j: int) -> bool:
        a, b = before[i], after[j]
        return (a is b or a == b) and (old_keys is None or new_keys is None or old_keys[i] == new_keys[j])

    n, m = len(before), len(after)
    shortest = min(n, m)
    prefix = 0
    while prefix < shortest and same(prefix, prefix):
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and same(n - 1 - suffix, m - 1 - suffix):
        suffix += 1
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
            inner = diff(a, b)
            if inner is None:
                edit.attrs[name] = b
            else:
                edit.edit_attrs[name] = inner
    for name in added:
        edit.attrs[name] = after[name]
    return True
