/* The compiled accelerator of the recorder's hot path: line events.
 *
 * `configure(...)` once (the recorder's types and markers), then `Hot(recorder)` per recorder, which does,
 * for a line event, what `Recorder.line` does (`tracer/recorder.py` holds the
 * rules; this file mirrors them): `_settle` (what to read), `_diff_all` and
 * `_diff_names` (read the frame's locals), `_check` for the cases that need no
 * encoding (the same object, an atom, an unbound name, the same function by its
 * weak reference, a list or dict of atoms whose elements are all the same
 * objects), `_attach` and `_append`. Everything else is handed to the
 * recorder's own Python methods before anything is changed, so both paths
 * record the same trace: a frame not seen yet goes to `Recorder.line`, a value
 * that must be encoded or edited to `Recorder._check`, changes holding an edit
 * to `Recorder._attach`.
 *
 * Like the Python path it never runs user code: it compares only exact builtin
 * atoms (with their builtin ==), identities and types, and looks up only str
 * keys and frames (hashed by identity).
 *
 * With line events recorded, a frame's start, resumption and return are done here
 * too (`Recorder.call`, `Recorder.returned`): the FrameState of a new frame is made
 * here (every slot that FrameState.__init__ sets), except for a code object not
 * analysed yet or a new thread, which go to `Recorder._new_frame`.
 *
 * Entry points: `Hot.monitor_line(code, line)` (a sys.monitoring LINE
 * callback), `Hot.monitor_start(code, offset)` (PY_START, PY_RESUME) and
 * `Hot.monitor_return(code, offset, value)` (PY_RETURN), the object itself as a sys.settrace local trace function (line
 * events here, every other event to `Hot.other`, the backend's Python
 * function), and `Hot.line(frame, line)` (what `Recorder.line` does); and
 * `build_steps(...)`, the Step structs that `Recorder.finish` makes of the raw
 * records (atoms encoded inline as there, anything else by the encoder).
 * An error in a callback (a bug of ours, the recursion limit) goes to
 * `Recorder.failed` and never reaches the traced program.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>
#include <math.h>
#include <string.h>

enum {
    S_SEEN, S_FLATS, S_REFS, S_LINES, S_LAST, S_PENDING, S_PREV_LINE, S_FID, S_DEFINED, S_INFO, S_IS_MODULE,
    S_RAISED_AT, S_RETURNED, S_FINISHED, S_CODE, S_DEPTH, S_PARENT, S_THREAD, S_EXCEPTION, NSLOTS
};
static const char *SLOT_NAMES[NSLOTS] = {
    "seen", "flats", "refs", "lines", "last", "pending", "prev_line", "fid", "defined", "info", "is_module",
    "raised_at", "returned", "finished", "code", "depth", "parent", "thread", "exception",
};
enum { E_NODES, E_SAW_DEFAULTDICT, NENC };
static const char *ENC_NAMES[NENC] = {"nodes", "saw_defaultdict"};

/* LineInfo and CodeInfo fields (tracer.codeinfo NamedTuples) */
enum { LI_STORES, LI_MUTATES, LI_INPLACE, LI_SUBSCRIPT, LI_ITERATES };
enum { CI_LINES, CI_GLOBALS_WRITTEN, CI_IS_MODULE, CI_SCOPE };
/* recorder.LINE, CALL, RETURN; codeinfo.START_LINE */
enum { EV_LINE, EV_CALL, EV_RETURN };
#define START_LINE 0

typedef struct {
    PyObject_HEAD
    PyObject *rec, *events, *fids, *line_numbers, *changes, *states, *encoder;
    PyObject *payloads, *py_line, *py_check, *py_check_caps, *py_failed, *py_encode, *py_new_frame;
    PyObject *py_call, *py_returned, *infos, *threads, *frames;
    PyObject *other;
    Py_ssize_t max_steps, max_values, max_items;
    char active, lines;
} Hot;

/* What `configure` is told once: the recorder's types and markers, where FrameState and Encoder keep their slots. */
typedef struct {
    PyObject *value_type, *edit_type, *splice_type, *deleted, *missing, *safe_iterables, *encoder_type;
    PyObject *step_type, *exception_type, *small_ints, *event_names, *str_int, *str_str, *frame_state_type;
    PyObject *line_event, *replace, *empty;
    Py_ssize_t off[NSLOTS], enc_off[NENC];
} Config;
static Config C;

#define SLOT(h, st, i) (*(PyObject **)((char *)(st) + C.off[i]))
#define ENC(h, i) (*(PyObject **)((char *)(h)->encoder + C.enc_off[i]))

static PyObject *str_line, *str_any_deleted, *str_whole;

/* `name` as an interned str, made once and kept (a name made anew misses the type's attribute cache) */
static PyObject *interned(const char *name) {
    static struct { const char *name; PyObject *key; } known[32];
    static int count;
    for (int i = 0; i < count; i++)
        if (known[i].name == name || strcmp(known[i].name, name) == 0) return known[i].key;
    if (count == 32) {
        PyErr_SetString(PyExc_RuntimeError, "more attribute names than the accelerator keeps");
        return NULL;
    }
    PyObject *key = PyUnicode_InternFromString(name);
    if (key == NULL) return NULL;
    known[count].name = name, known[count].key = key;
    count++;
    return key;
}

static PyObject *get_attr(PyObject *obj, const char *name) {
    PyObject *key = interned(name);
    return key == NULL ? NULL : PyObject_GetAttr(obj, key);
}

/* ------------------------------------------------------------ helpers */

static int is_atom(PyTypeObject *t) {
    return t == &PyLong_Type || t == &PyFloat_Type || t == &PyComplex_Type || t == &PyBool_Type ||
           t == Py_TYPE(Py_None) || t == &PyUnicode_Type || t == &PyBytes_Type || t == &PyRange_Type;
}

static int same_float(double a, double b) {
    return (a == b && copysign(1.0, a) == copysign(1.0, b)) || (a != a && b != b);
}

/* recorder._same_atom: 1, 0, or -1 on error */
static int same_atom(PyObject *old, PyObject *new) {
    PyTypeObject *t = Py_TYPE(new);
    if (Py_TYPE(old) != t) return 0;
    if (t == &PyLong_Type || t == &PyUnicode_Type || t == &PyBytes_Type || t == &PyBool_Type ||
        t == Py_TYPE(Py_None) || t == &PyRange_Type)
        return PyObject_RichCompareBool(old, new, Py_EQ);
    if (t == &PyFloat_Type) return same_float(PyFloat_AS_DOUBLE(old), PyFloat_AS_DOUBLE(new));
    if (t == &PyComplex_Type) {
        Py_complex a = ((PyComplexObject *)old)->cval, b = ((PyComplexObject *)new)->cval;
        return same_float(a.real, b.real) && same_float(a.imag, b.imag);
    }
    return 0;
}

/* mapping.get(name) as a new reference, or NULL with no error when absent */
static PyObject *get_name(PyObject *mapping, PyObject *name) {
    if (PyDict_CheckExact(mapping)) {
        PyObject *v = PyDict_GetItemWithError(mapping, name);
        Py_XINCREF(v);
        return v;
    }
    PyObject *v = PyObject_GetItem(mapping, name);
    if (v == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) PyErr_Clear();
    return v;
}

static Py_ssize_t slot_offset(PyObject *cls, const char *name) {
    PyObject *descr = PyObject_GetAttrString(cls, name);
    if (descr == NULL) return -1;
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY)) off = m->offset;
    }
    Py_DECREF(descr);
    if (off < 0) PyErr_Format(PyExc_TypeError, "%s is not a writable __slots__ member", name);
    return off;
}

static int set_slot(PyObject **slot, PyObject *value) {
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

static int set_int_slot(PyObject **slot, Py_ssize_t value) {
    PyObject *v = PyLong_FromSsize_t(value);
    if (v == NULL) return -1;
    Py_XSETREF(*slot, v);
    return 0;
}

static int require(PyObject *st_slot, const char *name) {
    if (st_slot == NULL) {
        PyErr_Format(PyExc_AttributeError, "FrameState.%s is not set", name);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ _check */

/* recorder._forget */
static int forget(Hot *h, PyObject *st, PyObject *name) {
    PyObject *dicts[2] = {SLOT(h, st, S_FLATS), SLOT(h, st, S_REFS)};
    for (int i = 0; i < 2; i++) {
        if (PyDict_GET_SIZE(dicts[i]) && PyDict_DelItem(dicts[i], name) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
            PyErr_Clear();
        }
    }
    return 0;
}

/* _held(obj, cls, cap): the elements (dict: keys and values) that an encoding of `obj` shows */
static PyObject *held_now(Hot *h, PyObject *obj) {
    Py_ssize_t cap = h->max_items;
    if (PyList_CheckExact(obj)) return PyList_GetSlice(obj, 0, PyList_GET_SIZE(obj) < cap ? PyList_GET_SIZE(obj) : cap);
    PyObject *out = PyList_New(0), *key, *value;
    if (out == NULL) return NULL;
    Py_ssize_t pos = 0, pairs = 0;
    while (pairs < cap && PyDict_Next(obj, &pos, &key, &value)) {
        if (PyList_Append(out, key) < 0 || PyList_Append(out, value) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        pairs++;
    }
    return out;
}

/* Is the list or dict `obj` made of the very elements its flat (length, held, cls) holds? */
static int flat_unchanged(Hot *h, PyObject *flat, PyObject *obj) {
    PyObject *held = PyTuple_GET_ITEM(flat, 1);
    Py_ssize_t length = PyLong_AsSsize_t(PyTuple_GET_ITEM(flat, 0));
    if (length == -1 && PyErr_Occurred()) return -1;
    if (!PyList_CheckExact(held)) return 0;
    Py_ssize_t cap = h->max_items, n = PyList_GET_SIZE(held);
    if (PyList_CheckExact(obj)) {
        Py_ssize_t size = PyList_GET_SIZE(obj);
        if (size != length || n != (size < cap ? size : cap)) return 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (PyList_GET_ITEM(obj, i) != PyList_GET_ITEM(held, i)) return 0;
        return 1;
    }
    if (PyDict_CheckExact(obj)) {
        Py_ssize_t size = PyDict_GET_SIZE(obj);
        if (size != length || n != 2 * (size < cap ? size : cap)) return 0;
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *value;
        while (i < n && PyDict_Next(obj, &pos, &key, &value)) {
            if (key != PyList_GET_ITEM(held, i) || value != PyList_GET_ITEM(held, i + 1)) return 0;
            i += 2;
        }
        return i == n;
    }
    return 0;
}

static PyObject *encode(Hot *h, PyObject *x) { return PyObject_CallOneArg(h->py_encode, x); }

/* recorder._edit_flat for a flat seen before and changed: 1 done, 0 for the recorder to do (nothing
 * changed yet), -1 on error. Mirrors it step for step: replaced atoms (not dict keys) become a `put`,
 * appends or removals at the end a splice. */
static int edit_flat(Hot *h, PyObject *st, PyObject *name, PyObject *obj, PyObject *old, PyObject *flat,
                     PyObject *changes) {
    PyObject *held = PyTuple_GET_ITEM(flat, 1), *now = NULL, *old_items = NULL, *put = NULL, *items = NULL;
    PyObject *values = NULL, *keys = NULL, *edit = NULL, *new = NULL, *splice = NULL, *kw = NULL;
    PyObject *old_keys = NULL, *new_flat = NULL;
    int result = -1;
    Py_ssize_t length = PyLong_AsSsize_t(PyTuple_GET_ITEM(flat, 0)), cap = h->max_items;
    if (length == -1 && PyErr_Occurred()) return -1;
    int is_dict = PyDict_CheckExact(obj), pairs = is_dict ? 2 : 1;
    Py_ssize_t size = is_dict ? PyDict_GET_SIZE(obj) : PyList_GET_SIZE(obj);
    if (size > cap || length > cap || !PyList_CheckExact(held)) return 0;
    if ((old_items = get_attr(old, "items")) == NULL) return -1;
    if (!PyList_CheckExact(old_items)) {
        result = 0;
        goto done;
    }
    if ((now = held_now(h, obj)) == NULL) goto done;
    Py_ssize_t n = PyList_GET_SIZE(now);
    if (size == length) {
        if (n != PyList_GET_SIZE(held)) {
            result = 0;
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PyList_GET_ITEM(now, i);
            if (x != PyList_GET_ITEM(held, i) && (!is_atom(Py_TYPE(x)) || (pairs == 2 && i % 2 == 0))) {
                result = 0;  /* not an atom, or a dict key replaced */
                goto done;
            }
        }
        if ((put = PyDict_New()) == NULL) goto done;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PyList_GET_ITEM(now, i), *was = PyList_GET_ITEM(held, i);
            if (x == was) continue;
            int same = same_atom(was, x);
            if (same < 0) goto done;
            if (same) continue;
            PyObject *index = PyLong_FromSsize_t(i / pairs), *value = index ? encode(h, x) : NULL;
            int r = value ? PyDict_SetItem(put, index, value) : -1;
            Py_XDECREF(index);
            Py_XDECREF(value);
            if (r < 0) goto done;
        }
        if (PyDict_GET_SIZE(put)) {
            if ((items = PyList_GetSlice(old_items, 0, PyList_GET_SIZE(old_items))) == NULL) goto done;
            Py_ssize_t pos = 0;
            PyObject *index, *value;
            while (PyDict_Next(put, &pos, &index, &value)) {
                Py_ssize_t k = PyLong_AsSsize_t(index);
                if (k < 0 || k >= PyList_GET_SIZE(items)) {
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "list assignment index out of range");
                    goto done;
                }
                if (PyList_SetItem(items, k, Py_NewRef(value)) < 0) goto done;
            }
            if ((kw = Py_BuildValue("{sO}", "items", items)) == NULL) goto done;
            PyObject *args = PyTuple_Pack(1, old);
            if (args == NULL) goto done;
            new = PyObject_Call(C.replace, args, kw);
            Py_DECREF(args);
            if (new == NULL) goto done;
            Py_CLEAR(kw);
            if ((kw = Py_BuildValue("{sO}", "put", put)) == NULL) goto done;
            if ((edit = PyObject_Call(C.edit_type, C.empty, kw)) == NULL) goto done;
            if (PyDict_SetItem(SLOT(h, st, S_SEEN), name, new) < 0 || PyDict_SetItem(changes, name, edit) < 0)
                goto done;
        }
    } else {
        Py_ssize_t common = (size < length ? size : length) * pairs;
        if (common > n || common > PyList_GET_SIZE(held)) {
            result = 0;
            goto done;
        }
        for (Py_ssize_t i = 0; i < common; i++) {
            if (PyList_GET_ITEM(now, i) != PyList_GET_ITEM(held, i)) {
                result = 0;
                goto done;
            }
        }
        for (Py_ssize_t i = common; i < n; i++) {
            if (!is_atom(Py_TYPE(PyList_GET_ITEM(now, i)))) {
                result = 0;
                goto done;
            }
        }
        if ((values = PyList_New(0)) == NULL) goto done;
        if (is_dict && (keys = PyList_New(0)) == NULL) goto done;
        for (Py_ssize_t i = common; i < n; i++) {
            PyObject *value = encode(h, PyList_GET_ITEM(now, i));
            if (value == NULL) goto done;
            int r = PyList_Append(is_dict && (i - common) % 2 == 0 ? keys : values, value);
            Py_DECREF(value);
            if (r < 0) goto done;
        }
        Py_ssize_t start = common / pairs;
        splice = PyObject_CallFunction(C.splice_type, "nnOO", start, length, values, keys ? keys : Py_None);
        if (splice == NULL) goto done;
        if ((items = PyList_GetSlice(old_items, 0, start)) == NULL) goto done;
        PyObject *joined = PySequence_Concat(items, values);
        if (joined == NULL) goto done;
        Py_SETREF(items, joined);
        if ((kw = Py_BuildValue("{sO}", "items", items)) == NULL) goto done;
        PyObject *args = PyTuple_Pack(1, old);
        if (args == NULL) goto done;
        new = PyObject_Call(C.replace, args, kw);
        Py_DECREF(args);
        if (new == NULL) goto done;
        if (keys != NULL) {
            if ((old_keys = get_attr(old, "keys")) == NULL) goto done;
            if (old_keys != Py_None) {
                PyObject *prefix = PySequence_GetSlice(old_keys, 0, start), *all = NULL;
                if (prefix == NULL || (all = PySequence_Concat(prefix, keys)) == NULL ||
                    PyObject_SetAttr(new, interned("keys"), all) < 0) {
                    Py_XDECREF(prefix);
                    Py_XDECREF(all);
                    goto done;
                }
                Py_DECREF(prefix);
                Py_DECREF(all);
            }
        }
        Py_CLEAR(kw);
        if ((kw = Py_BuildValue("{sO}", "splice", splice)) == NULL) goto done;
        if ((edit = PyObject_Call(C.edit_type, C.empty, kw)) == NULL) goto done;
        if (PyDict_SetItem(SLOT(h, st, S_SEEN), name, new) < 0 || PyDict_SetItem(changes, name, edit) < 0) goto done;
    }
    PyObject *size_obj = PyLong_FromSsize_t(size);
    if (size_obj == NULL) goto done;
    new_flat = PyTuple_Pack(3, size_obj, now, (PyObject *)Py_TYPE(obj));
    Py_DECREF(size_obj);
    if (new_flat == NULL || PyDict_SetItem(SLOT(h, st, S_FLATS), name, new_flat) < 0) goto done;
    result = 1;
done:
    Py_XDECREF(old_items);
    Py_XDECREF(now);
    Py_XDECREF(put);
    Py_XDECREF(items);
    Py_XDECREF(values);
    Py_XDECREF(keys);
    Py_XDECREF(edit);
    Py_XDECREF(new);
    Py_XDECREF(splice);
    Py_XDECREF(kw);
    Py_XDECREF(old_keys);
    Py_XDECREF(new_flat);
    return result;
}

static int add_node(Hot *h) {
    PyObject **slot = &ENC(h, E_NODES);
    Py_ssize_t nodes = PyLong_AsSsize_t(*slot);
    if (nodes == -1 && PyErr_Occurred()) return -1;
    return set_int_slot(slot, nodes + 1);
}

static int call_py_check(Hot *h, PyObject *st, PyObject *name, PyObject *obj, PyObject *changes) {
    PyObject *args[4] = {st, name, obj, changes};
    PyObject *r = PyObject_Vectorcall(h->py_check, args, 4, NULL);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* recorder._check; `obj` is C.missing for an unbound name. */
static int check(Hot *h, PyObject *st, PyObject *name, PyObject *obj, PyObject *changes) {
    PyObject *seen = SLOT(h, st, S_SEEN);
    PyObject *old = PyDict_GetItemWithError(seen, name);
    if (old == NULL) {
        if (PyErr_Occurred()) return -1;
        old = C.missing;
    }
    if (old == obj) return 0;
    PyTypeObject *cls = Py_TYPE(obj);
    if (is_atom(cls)) {
        int result = -1;
        Py_INCREF(old);
        if (PyDict_SetItem(seen, name, obj) < 0) goto atom_done;
        if (Py_TYPE(old) == (PyTypeObject *)C.value_type) {
            if (forget(h, st, name) < 0) goto atom_done;
        } else if (old != C.missing) {
            int same = same_atom(old, obj);
            if (same < 0) goto atom_done;
            if (same) {
                result = 0;
                goto atom_done;
            }
        }
        if (add_node(h) < 0 || PyDict_SetItem(changes, name, obj) < 0) goto atom_done;
        result = 0;
    atom_done:
        Py_DECREF(old);
        return result;
    }
    if (obj == C.missing) {
        int result = -1;
        Py_INCREF(old);
        if (PyDict_DelItem(seen, name) < 0) goto missing_done;
        if (Py_TYPE(old) == (PyTypeObject *)C.value_type && forget(h, st, name) < 0) goto missing_done;
        if (PyDict_SetItem(changes, name, C.deleted) < 0) goto missing_done;
        if (PyObject_SetAttr(h->rec, str_any_deleted, Py_True) < 0) goto missing_done;
        result = 0;
    missing_done:
        Py_DECREF(old);
        return result;
    }
    if (Py_TYPE(old) == (PyTypeObject *)C.value_type) {
        PyObject *ref = PyDict_GetItemWithError(SLOT(h, st, S_REFS), name);
        if (ref == NULL && PyErr_Occurred()) return -1;
        if (ref != NULL && PyWeakref_CheckRef(ref)) {
#if PY_VERSION_HEX >= 0x030D0000
            PyObject *target;
            if (PyWeakref_GetRef(ref, &target) < 0) return -1;
            Py_XDECREF(target);  /* only its identity is compared */
#else
            PyObject *target = PyWeakref_GET_OBJECT(ref);
#endif
            if (target == obj) return 0;
        }
        PyObject *flat = PyDict_GetItemWithError(SLOT(h, st, S_FLATS), name);
        if (flat == NULL && PyErr_Occurred()) return -1;
        if (flat != NULL && PyTuple_CheckExact(flat) && PyTuple_GET_SIZE(flat) == 3 &&
            PyTuple_GET_ITEM(flat, 2) == (PyObject *)cls) {
            int same = flat_unchanged(h, flat, obj);
            if (same != 0) return same < 0 ? -1 : 0;
            Py_INCREF(flat);
            Py_INCREF(old);
            int done = edit_flat(h, st, name, obj, old, flat, changes);
            Py_DECREF(flat);
            Py_DECREF(old);
            if (done != 0) return done < 0 ? -1 : 0;
        }
    }
    return call_py_check(h, st, name, obj, changes);  /* it must be encoded: the recorder does it */
}

/* ------------------------------------------------------------ _diff_all, _diff_names, _attach */

/* Are the locals dict's keys all non-empty exact str? (A module's namespace may hold others: then the
 * recorder reads it, and fails, its own way.) */
static int plain_keys(PyObject *locals) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(locals, &pos, &key, &value))
        if (!PyUnicode_CheckExact(key) || PyUnicode_GET_LENGTH(key) == 0) return 0;
    return 1;
}

static int hidden(PyObject *name, int is_module) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    if (n == 0) return 0;
    if (PyUnicode_READ_CHAR(name, 0) == '.') return 1;
    return is_module && n >= 2 && PyUnicode_READ_CHAR(name, 0) == '_' && PyUnicode_READ_CHAR(name, 1) == '_' &&
           PyUnicode_READ_CHAR(name, n - 2) == '_' && PyUnicode_READ_CHAR(name, n - 1) == '_';
}

static int diff_one(Hot *h, PyObject *st, PyObject *name, PyObject *obj, int is_module, PyObject *changes,
                    Py_ssize_t *count) {
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "a local variable's name is not a str");
        return -1;
    }
    if (hidden(name, is_module)) {
        int in_seen = PyDict_Contains(SLOT(h, st, S_SEEN), name);
        if (in_seen < 0) return -1;
        if (!in_seen) return 0;
    }
    (*count)++;
    return check(h, st, name, obj, changes);
}

/* recorder._diff_all: a new dict of changes, or NULL on error. */
static PyObject *diff_all(Hot *h, PyObject *st, PyObject *frame, PyObject *locals) {
    PyObject *changes = NULL, *items = NULL, *globals = NULL, *gone = NULL;
    PyObject *seen = SLOT(h, st, S_SEEN);
    int is_module = SLOT(h, st, S_IS_MODULE) == Py_True;
    Py_ssize_t count = 0;
    if (PyDict_Check(locals)) {
        items = PyDict_Items(locals);
    } else {
        items = PyMapping_Items(locals);
    }
    if (items == NULL) return NULL;
    changes = PyDict_New();
    if (changes == NULL) goto error;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (diff_one(h, st, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), is_module, changes, &count) < 0)
            goto error;
    }
    PyObject *written = PyTuple_GET_ITEM(SLOT(h, st, S_INFO), CI_GLOBALS_WRITTEN);
    if (PyTuple_GET_SIZE(written)) {
        globals = PyFrame_GetGlobals((PyFrameObject *)frame);
        if (globals == NULL) goto error;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(written); i++) {
            PyObject *name = PyTuple_GET_ITEM(written, i);
            count++;
            PyObject *obj = get_name(globals, name);
            if (obj == NULL && PyErr_Occurred()) goto error;
            int r = check(h, st, name, obj ? obj : C.missing, changes);
            Py_XDECREF(obj);
            if (r < 0) goto error;
        }
    }
    if (PyDict_GET_SIZE(seen) > count) {
        gone = PyList_New(0);
        if (gone == NULL) goto error;
        Py_ssize_t pos = 0;
        PyObject *name, *value;
        while (PyDict_Next(seen, &pos, &name, &value)) {
            int in_locals = PySequence_Contains(locals, name);
            if (in_locals < 0) goto error;
            if (in_locals) continue;
            int in_written = PySequence_Contains(written, name);
            if (in_written < 0) goto error;
            if (!in_written && PyList_Append(gone, name) < 0) goto error;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(gone); i++)
            if (check(h, st, PyList_GET_ITEM(gone, i), C.missing, changes) < 0) goto error;
    }
    Py_DECREF(items);
    Py_XDECREF(globals);
    Py_XDECREF(gone);
    return changes;
error:
    Py_XDECREF(items);
    Py_XDECREF(globals);
    Py_XDECREF(gone);
    Py_XDECREF(changes);
    return NULL;
}

/* diff_all, unless the locals are a dict with other keys than names: then the recorder reads it (and fails) its way */
static PyObject *read_all(Hot *h, PyObject *st, PyObject *frame, PyObject *locals) {
    if (PyDict_Check(locals) && !plain_keys(locals)) return PyObject_CallMethod(h->rec, "_diff_all", "OO", st, frame);
    return diff_all(h, st, frame, locals);
}

/* recorder._diff_names */
static PyObject *diff_names(Hot *h, PyObject *st, PyObject *frame, PyObject *locals, PyObject *names) {
    PyObject *changes = PyDict_New(), *globals = NULL;
    if (changes == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *pair = PyTuple_GET_ITEM(names, i), *name = PyTuple_GET_ITEM(pair, 0), *source = locals;
        if (PyTuple_GET_ITEM(pair, 1) == Py_True) {
            if (globals == NULL && (globals = PyFrame_GetGlobals((PyFrameObject *)frame)) == NULL) goto error;
            source = globals;
        }
        PyObject *obj = get_name(source, name);
        if (obj == NULL && PyErr_Occurred()) goto error;
        int r = check(h, st, name, obj ? obj : C.missing, changes);
        Py_XDECREF(obj);
        if (r < 0) goto error;
    }
    Py_XDECREF(globals);
    return changes;
error:
    Py_XDECREF(globals);
    Py_DECREF(changes);
    return NULL;
}

/* recorder._attach */
static int attach(Hot *h, PyObject *st, PyObject *changes) {
    if (PyDict_GET_SIZE(changes) == 0) return 0;
    PyObject *pending = SLOT(h, st, S_PENDING);
    Py_ssize_t index = PyLong_AsSsize_t(pending);
    if (index == -1 && PyErr_Occurred()) return -1;
    PyObject *existing = PyDict_GetItemWithError(h->changes, pending);
    if (existing == NULL) {
        if (PyErr_Occurred() || PyDict_SetItem(h->changes, pending, changes) < 0) return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(h->line_numbers);
    if (index < 0) index += n;
    if (index < 0 || index >= n) {
        PyErr_SetString(PyExc_IndexError, "pending step out of range");
        return -1;
    }
    PyObject *line = PyList_GET_ITEM(h->line_numbers, index), *defined = SLOT(h, st, S_DEFINED);
    Py_INCREF(line);
    Py_XINCREF(existing);
    int result = -1, whole = -1;  /* -1: Recorder.whole not read yet */
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(changes, &pos, &name, &value)) {
        if (Py_TYPE(value) == (PyTypeObject *)C.edit_type) {
            /* Replay holds no value to edit (a name not shown yet, or events were lost), or this step
               changed it already: store the whole value. */
            int store_whole = !PyDict_Contains(defined, name);
            if (!store_whole && existing != NULL) store_whole = PyDict_Contains(existing, name);
            if (!store_whole) {
                if (whole < 0) {
                    PyObject *w = PyObject_GetAttr(h->rec, str_whole);
                    if (w == NULL) goto done;
                    whole = PyObject_IsTrue(w);
                    Py_DECREF(w);
                    if (whole < 0) goto done;
                }
                store_whole = whole;
            }
            if (store_whole < 0) goto done;
            if (store_whole) {
                value = PyDict_GetItemWithError(SLOT(h, st, S_SEEN), name);
                if (value == NULL) {
                    if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
                    goto done;
                }
                if (PyDict_SetItem(changes, name, value) < 0) goto done;  /* a key it has: no resize */
            }
        }
        if ((existing != NULL && PyDict_SetItem(existing, name, value) < 0) || PyDict_SetItem(defined, name, line) < 0)
            goto done;
    }
    result = 0;
done:
    Py_DECREF(line);
    Py_XDECREF(existing);
    return result;
}

/* ------------------------------------------------------------ _settle, line */

static int is_safe_iterable(Hot *h, PyObject *value) {
    PyTypeObject *t = Py_TYPE(value);
    if (!Py_IS_TYPE((PyObject *)t, &PyType_Type)) return 0;  /* a metaclass: hash nothing of it */
    return PySet_Contains(C.safe_iterables, (PyObject *)t);
}

static int settle(Hot *h, PyObject *st, PyObject *frame) {
    PyObject *info = PyDict_GetItemWithError(SLOT(h, st, S_LINES), SLOT(h, st, S_PREV_LINE));
    if (info == NULL && PyErr_Occurred()) return -1;
    if (info != NULL && !(PyTuple_Check(info) && PyTuple_GET_SIZE(info) == 5)) {
        PyErr_SetString(PyExc_TypeError, "a LineInfo is not a 5-tuple");
        return -1;
    }
    Py_ssize_t last = PyLong_AsSsize_t(SLOT(h, st, S_LAST));
    if (last == -1 && PyErr_Occurred()) return -1;
    int full = info == NULL || last != PyList_GET_SIZE(h->events) - 1;
    if (!full) {
        int t = PyObject_IsTrue(PyTuple_GET_ITEM(info, LI_MUTATES));
        if (t < 0) return -1;
        full = t;
    }
    if (!full && PyTuple_GET_ITEM(info, LI_SUBSCRIPT) == Py_True) {
        int t = PyObject_IsTrue(ENC(h, E_SAW_DEFAULTDICT));
        if (t < 0) return -1;
        full = t;
    }
    PyObject *locals = NULL, *changes = NULL;
    int result = -1;
    if (!full) {
        PyObject *inplace = PyTuple_GET_ITEM(info, LI_INPLACE), *seen = SLOT(h, st, S_SEEN);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(inplace) && !full; i++) {
            PyObject *v = PyDict_GetItemWithError(seen, PyTuple_GET_ITEM(inplace, i));
            if (v == NULL && PyErr_Occurred()) return -1;
            if (v != NULL && !is_atom(Py_TYPE(v))) full = 1;
        }
        PyObject *iterates = PyTuple_GET_ITEM(info, LI_ITERATES);
        if (PyTuple_GET_SIZE(iterates) && !full) {
            if ((locals = PyFrame_GetLocals((PyFrameObject *)frame)) == NULL) return -1;
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(iterates) && !full; i++) {
                PyObject *pair = PyTuple_GET_ITEM(iterates, i), *source = locals, *globals = NULL;
                if (PyTuple_GET_ITEM(pair, 1) == Py_True) {
                    if ((globals = PyFrame_GetGlobals((PyFrameObject *)frame)) == NULL) goto done;
                    source = globals;
                }
                PyObject *value = get_name(source, PyTuple_GET_ITEM(pair, 0));
                Py_XDECREF(globals);
                if (value == NULL) {
                    if (PyErr_Occurred()) goto done;
                    full = 1;  /* unbound: not a builtin container */
                    continue;
                }
                int safe = is_safe_iterable(h, value);
                Py_DECREF(value);
                if (safe < 0) goto done;
                full = !safe;
            }
        }
    }
    if (full || PyTuple_GET_SIZE(PyTuple_GET_ITEM(info, LI_STORES))) {
        if (locals == NULL && (locals = PyFrame_GetLocals((PyFrameObject *)frame)) == NULL) return -1;
        if (full) {
            changes = read_all(h, st, frame, locals);
        } else {
            changes = diff_names(h, st, frame, locals, PyTuple_GET_ITEM(info, LI_STORES));
        }
        if (changes == NULL || attach(h, st, changes) < 0) goto done;
    }
    result = 0;
done:
    Py_XDECREF(locals);
    Py_XDECREF(changes);
    return result;
}

static int is_frame_state(Hot *h, PyObject *st) {
    if ((PyObject *)Py_TYPE(st) != C.frame_state_type) {  /* its slots are where configure() found them */
        PyErr_SetString(PyExc_TypeError, "not a FrameState");
        return 0;
    }
    for (int i = 0; i < NSLOTS; i++)
        if (require(SLOT(h, st, i), SLOT_NAMES[i]) < 0) return 0;
    return 1;
}

/* Recorder._append: the step's index, or -1 with an exception set */
static Py_ssize_t append_step(Hot *h, PyObject *st, int event, PyObject *line) {
    Py_ssize_t index = PyList_GET_SIZE(h->events);
    PyObject *ev = PyLong_FromLong(event); /* a small int: cached, never fails */
    int r = PyList_Append(h->events, ev);
    Py_DECREF(ev);
    if (r < 0 || PyList_Append(h->fids, SLOT(h, st, S_FID)) < 0 || PyList_Append(h->line_numbers, line) < 0 ||
        set_int_slot(&SLOT(h, st, S_LAST), index) < 0)
        return -1;
    return index;
}

/* The recorder's caps, after a step: Recorder._check_caps when one is reached */
static int check_caps(Hot *h) {
    Py_ssize_t nodes = PyLong_AsSsize_t(ENC(h, E_NODES));
    if (nodes == -1 && PyErr_Occurred()) return -1;
    if (PyList_GET_SIZE(h->events) >= h->max_steps || nodes >= h->max_values) {
        PyObject *r = PyObject_CallNoArgs(h->py_check_caps);
        if (r == NULL) return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* Recorder.line: 0, or -1 with an exception set */
static int hot_line(Hot *h, PyObject *frame, PyObject *line) {
    PyObject *st = PyDict_GetItemWithError(h->states, frame);
    if (st == NULL) {
        if (PyErr_Occurred()) return -1;
        PyObject *r = PyObject_CallFunctionObjArgs(h->py_line, frame, line, NULL);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    Py_INCREF(st);
    int result = -1;
    if (!is_frame_state(h, st) || settle(h, st, frame) < 0 || append_step(h, st, EV_LINE, line) < 0) goto done;
    set_slot(&SLOT(h, st, S_PENDING), SLOT(h, st, S_LAST));
    set_slot(&SLOT(h, st, S_PREV_LINE), line);
    result = check_caps(h);
done:
    Py_DECREF(st);
    return result;
}

/* frame.f_lineno as Python shows it: the line, or None */
static PyObject *frame_line(PyObject *frame) {
    int line = PyFrame_GetLineNumber((PyFrameObject *)frame);
    return line < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(line);
}

/* Recorder._new_frame, with FrameState.__init__ done here (configure() checked that these are all its slots);
   a code object not analysed yet, or a new thread, goes to Recorder._new_frame. A new reference, or NULL. */
static PyObject *new_frame(Hot *h, PyObject *frame) {
    PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)frame);
    PyObject *info = PyDict_GetItemWithError(h->infos, (PyObject *)code), *ident = NULL, *thread = NULL;
    PyObject *st = NULL, *values[NSLOTS] = {NULL};
    PyFrameObject *back = NULL;
    if (info == NULL || !PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 4) goto python;
    if ((ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident())) == NULL) goto error;
    if ((thread = PyDict_GetItemWithError(h->threads, ident)) == NULL) goto python;
    Py_ssize_t depth = 0, parent = -1;
    for (back = PyFrame_GetBack((PyFrameObject *)frame); back != NULL;) {
        PyObject *ps = PyDict_GetItemWithError(h->states, (PyObject *)back);
        if (ps == NULL && PyErr_Occurred()) goto error;
        if (ps != NULL) {
            if (!is_frame_state(h, ps)) goto error;
            depth = PyLong_AsSsize_t(SLOT(h, ps, S_DEPTH)) + 1;
            parent = PyLong_AsSsize_t(SLOT(h, ps, S_FID));
            if (PyErr_Occurred()) goto error;
            break;
        }
        PyFrameObject *next = PyFrame_GetBack(back);
        Py_SETREF(back, next);
    }
    PyTypeObject *type = (PyTypeObject *)C.frame_state_type;
    if ((st = type->tp_alloc(type, 0)) == NULL) goto error;
    values[S_FID] = PyLong_FromSsize_t(PyList_GET_SIZE(h->frames));
    values[S_CODE] = Py_NewRef(code);
    values[S_INFO] = Py_NewRef(info);
    values[S_LINES] = Py_NewRef(PyTuple_GET_ITEM(info, CI_LINES));
    values[S_IS_MODULE] = Py_NewRef(PyTuple_GET_ITEM(info, CI_IS_MODULE));
    values[S_DEPTH] = PyLong_FromSsize_t(depth);
    values[S_PARENT] = PyLong_FromSsize_t(parent);
    values[S_THREAD] = Py_NewRef(thread);
    values[S_SEEN] = PyDict_New();
    values[S_FLATS] = PyDict_New();
    values[S_REFS] = PyDict_New();
    values[S_DEFINED] = PyDict_New();
    values[S_PENDING] = PyLong_FromLong(-1);
    values[S_PREV_LINE] = PyLong_FromLong(START_LINE);
    values[S_LAST] = PyLong_FromLong(-1);
    values[S_RAISED_AT] = PyLong_FromLong(-1);
    values[S_RETURNED] = Py_NewRef(Py_None);
    values[S_EXCEPTION] = Py_NewRef(Py_None);
    values[S_FINISHED] = Py_NewRef(Py_False);
    for (int i = 0; i < NSLOTS; i++) {
        if (values[i] == NULL) goto error;
        SLOT(h, st, i) = values[i];
        values[i] = NULL;
    }
    if (PyList_Append(h->frames, st) < 0 || PyDict_SetItem(h->states, frame, st) < 0) goto error;
    Py_DECREF(code);
    Py_DECREF(ident);
    Py_XDECREF(back);
    return st;
python:
    Py_DECREF(code);
    Py_XDECREF(ident);
    if (PyErr_Occurred()) return NULL;
    return PyObject_CallOneArg(h->py_new_frame, frame);
error:
    for (int i = 0; i < NSLOTS; i++) Py_XDECREF(values[i]);
    Py_DECREF(code);
    Py_XDECREF(ident);
    Py_XDECREF(back);
    Py_XDECREF(st);
    return NULL;
}

/* Recorder.call (with line events): a frame starts, or resumes */
static int hot_call(Hot *h, PyObject *frame) {
    if (!h->lines) {
        PyObject *r = PyObject_CallOneArg(h->py_call, frame);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    PyObject *st = PyDict_GetItemWithError(h->states, frame), *line = NULL, *locals = NULL, *changes = NULL;
    int resumed = st != NULL, result = -1;
    if (resumed) {
        Py_INCREF(st);
    } else if (PyErr_Occurred() || (st = new_frame(h, frame)) == NULL) {
        return -1;
    }
    if (!is_frame_state(h, st)) goto done;
    int lineno = PyFrame_GetLineNumber((PyFrameObject *)frame);
    if (lineno <= 0) { /* frame.f_lineno or code.co_firstlineno */
        PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)frame);
        lineno = code->co_firstlineno;
        Py_DECREF(code);
    }
    if ((line = PyLong_FromLong(lineno)) == NULL || append_step(h, st, EV_CALL, line) < 0) goto done;
    set_slot(&SLOT(h, st, S_PENDING), SLOT(h, st, S_LAST));
    if (resumed) {
        set_slot(&SLOT(h, st, S_PREV_LINE), line);
    } else if (set_int_slot(&SLOT(h, st, S_PREV_LINE), START_LINE) < 0) {
        goto done;
    }
    if (set_int_slot(&SLOT(h, st, S_RAISED_AT), -1) < 0) goto done;
    if ((locals = PyFrame_GetLocals((PyFrameObject *)frame)) == NULL) goto done;
    if ((changes = read_all(h, st, frame, locals)) == NULL) goto done;
    if (!resumed) { /* outer variables are seen, not shown: they are not arguments */
        PyObject *scope = PyTuple_GET_ITEM(SLOT(h, st, S_INFO), CI_SCOPE), *name, *kind;
        Py_ssize_t pos = 0;
        if (!PyDict_Check(scope) || !PyDict_Check(changes)) {
            PyErr_SetString(PyExc_TypeError, "CodeInfo.scope or the changes are not a dict");
            goto done;
        }
        while (PyDict_Next(scope, &pos, &name, &kind)) {
            if (PyDict_DelItem(changes, name) < 0) {
                if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto done;
                PyErr_Clear();
            }
        }
    }
    if (attach(h, st, changes) < 0) goto done;
    result = check_caps(h);
done:
    Py_DECREF(st);
    Py_XDECREF(line);
    Py_XDECREF(locals);
    Py_XDECREF(changes);
    return result;
}

/* Recorder.returned (with line events): a frame returns `value` */
static int hot_returned(Hot *h, PyObject *frame, PyObject *value) {
    if (!h->lines) {
        PyObject *r = PyObject_CallFunctionObjArgs(h->py_returned, frame, value, NULL);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    PyObject *st = PyDict_GetItemWithError(h->states, frame), *line = NULL, *payload = NULL, *key = NULL;
    if (st == NULL) return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(st);
    int result = -1;
    if (!is_frame_state(h, st) || settle(h, st, frame) < 0) goto done;
    if ((line = frame_line(frame)) == NULL || append_step(h, st, EV_RETURN, line) < 0 || check_caps(h) < 0) goto done;
    if ((payload = encode(h, value)) == NULL) goto done;
    set_slot(&SLOT(h, st, S_RETURNED), payload);
    if ((key = PyLong_FromSsize_t(PyList_GET_SIZE(h->events) - 1)) == NULL ||
        PyDict_SetItem(h->payloads, key, payload) < 0)
        goto done;
    set_slot(&SLOT(h, st, S_FINISHED), Py_True);
    /* (gone already if recording stopped at this event) */
    if (PyDict_DelItem(h->states, frame) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto done;
        PyErr_Clear();
    }
    result = 0;
done:
    Py_DECREF(st);
    Py_XDECREF(line);
    Py_XDECREF(payload);
    Py_XDECREF(key);
    return result;
}

/* An error in a callback: Recorder.failed (an Exception), or on to the interpreter (any other). */
static int failed(Hot *h) {
    if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    PyObject *exc = value;
#endif
    PyObject *r = PyObject_CallOneArg(h->py_failed, exc);
    Py_XDECREF(exc);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* ------------------------------------------------------------ the type */

static PyObject *Hot_line(Hot *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "line(frame, line)");
        return NULL;
    }
    if (!PyFrame_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "line(frame, line): not a frame");
        return NULL;
    }
    if (hot_line(h, args[0], args[1]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Hot_settle(Hot *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyFrame_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "settle(st, frame)");
        return NULL;
    }
    if (!is_frame_state(h, args[0]) || settle(h, args[0], args[1]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Hot_diff_all(Hot *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyFrame_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "diff_all(st, frame)");
        return NULL;
    }
    PyObject *st = args[0], *frame = args[1];
    if (!is_frame_state(h, st)) return NULL;
    PyObject *locals = PyFrame_GetLocals((PyFrameObject *)frame);
    if (locals == NULL) return NULL;
    PyObject *changes = read_all(h, st, frame, locals);
    Py_DECREF(locals);
    return changes;
}

static PyObject *Hot_monitor_line(Hot *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "monitor_line(code, line)");
        return NULL;
    }
    PyObject *frame = (PyObject *)PyEval_GetFrame();  /* the user frame: no Python frame lies between */
    if (frame != NULL && hot_line(h, frame, args[1]) < 0 && failed(h) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Hot_monitor_start(Hot *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "monitor_start(code, offset)");
        return NULL;
    }
    PyObject *frame = (PyObject *)PyEval_GetFrame();
    if (frame != NULL && hot_call(h, frame) < 0 && failed(h) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Hot_monitor_return(Hot *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "monitor_return(code, offset, value)");
        return NULL;
    }
    PyObject *frame = (PyObject *)PyEval_GetFrame();
    if (frame != NULL && hot_returned(h, frame, args[2]) < 0 && failed(h) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Hot_call(Hot *h, PyObject *args, PyObject *kwargs) {
    PyObject *frame, *event, *arg;
    if (!PyArg_UnpackTuple(args, "trace", 3, 3, &frame, &event, &arg)) return NULL;
    if (!h->active) Py_RETURN_NONE;
    if (event == str_line || (PyUnicode_Check(event) && PyUnicode_Compare(event, str_line) == 0)) {
        if (!PyFrame_Check(frame)) {
            PyErr_SetString(PyExc_TypeError, "trace: not a frame");
            return NULL;
        }
        PyObject *line = PyLong_FromLong(PyFrame_GetLineNumber((PyFrameObject *)frame));
        if (line == NULL) return NULL;
        int r = hot_line(h, frame, line);
        Py_DECREF(line);
        if (r < 0 && failed(h) < 0) return NULL;
        return Py_NewRef((PyObject *)h);
    }
    if (h->other == NULL) Py_RETURN_NONE;
    PyObject *r = PyObject_Call(h->other, args, NULL);
    if (r == NULL) return NULL;
    if (r == Py_None) return r;
    Py_DECREF(r);
    return Py_NewRef((PyObject *)h);
}

static int Hot_init(Hot *h, PyObject *args, PyObject *kwargs) {
    PyObject *rec;
    if (!PyArg_UnpackTuple(args, "Hot", 1, 1, &rec)) return -1;
    if (C.value_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tracer._accel.configure() was not called");
        return -1;
    }
    PyObject *encoder = get_attr(rec, "encoder");
    if (encoder == NULL) return -1;
    if ((PyObject *)Py_TYPE(encoder) != C.encoder_type) {
        Py_DECREF(encoder);
        PyErr_SetString(PyExc_TypeError, "the recorder's encoder is not the configured Encoder");
        return -1;
    }
    Py_XSETREF(h->encoder, encoder);
    struct { PyObject **field; PyObject *owner; const char *name; int kind; } fields[] = {
        {&h->events, rec, "events", 1}, {&h->fids, rec, "fids", 1}, {&h->line_numbers, rec, "line_numbers", 1},
        {&h->changes, rec, "changes", 2}, {&h->states, rec, "states", 2}, {&h->payloads, rec, "payloads", 2},
        {&h->py_line, rec, "line", 0}, {&h->py_new_frame, rec, "_new_frame", 0}, {&h->py_call, rec, "call", 0},
        {&h->py_returned, rec, "returned", 0}, {&h->infos, rec, "infos", 2}, {&h->threads, rec, "threads", 2},
        {&h->frames, rec, "frames", 1},
        {&h->py_check, rec, "_check", 0}, {&h->py_check_caps, rec, "_check_caps", 0},
        {&h->py_failed, rec, "failed", 0}, {&h->py_encode, encoder, "encode", 0},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        PyObject *v = get_attr(fields[i].owner, fields[i].name);
        if (v == NULL) return -1;
        if ((fields[i].kind == 1 && !PyList_CheckExact(v)) || (fields[i].kind == 2 && !PyDict_CheckExact(v))) {
            Py_DECREF(v);
            PyErr_Format(PyExc_TypeError, "Recorder.%s has an unexpected type", fields[i].name);
            return -1;
        }
        Py_XSETREF(*fields[i].field, v);
    }
    PyObject *limits = get_attr(encoder, "limits");
    if (limits == NULL) return -1;
    PyObject *max_items = get_attr(limits, "max_items");
    Py_DECREF(limits);
    if (max_items == NULL) return -1;
    h->max_items = PyLong_AsSsize_t(max_items);
    Py_DECREF(max_items);
    PyObject *max_steps = get_attr(rec, "max_steps"), *max_values = get_attr(rec, "max_values");
    if (max_steps == NULL || max_values == NULL) {
        Py_XDECREF(max_steps);
        Py_XDECREF(max_values);
        return -1;
    }
    h->max_steps = PyLong_AsSsize_t(max_steps);
    h->max_values = PyLong_AsSsize_t(max_values);
    Py_DECREF(max_steps);
    Py_DECREF(max_values);
    if (PyErr_Occurred()) return -1;
    PyObject *lines = get_attr(rec, "lines");
    if (lines == NULL) return -1;
    int record_lines = PyObject_IsTrue(lines);
    Py_DECREF(lines);
    if (record_lines < 0) return -1;
    h->lines = (char)record_lines;
    Py_XSETREF(h->rec, Py_NewRef(rec));
    return 0;
}

static PyObject *configure(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"FrameState", "Encoder", "Value", "Edit", "Splice", "Step", "ExceptionInfo",
                            "SMALL_INTS", "EVENTS", "DELETED", "MISSING", "SAFE_ITERABLES", NULL};
    PyObject *frame_state, *encoder_type, *value_type, *edit_type, *splice_type, *step_type, *exception_type;
    PyObject *small_ints, *event_names, *deleted, *missing, *safe;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$O!O!O!O!O!O!O!O!O!OOO!", names, &PyType_Type, &frame_state,
                                     &PyType_Type, &encoder_type, &PyType_Type, &value_type, &PyType_Type, &edit_type,
                                     &PyType_Type, &splice_type, &PyType_Type, &step_type, &PyType_Type,
                                     &exception_type, &PyDict_Type, &small_ints, &PyTuple_Type, &event_names, &deleted,
                                     &missing, &PyFrozenSet_Type, &safe))
        return NULL;
    if (PyTuple_GET_SIZE(args) + (kwargs ? PyDict_GET_SIZE(kwargs) : 0) != 12) {
        PyErr_SetString(PyExc_TypeError, "configure() takes all of its 12 keyword arguments");
        return NULL;
    }
    Config c = {0};
    for (int i = 0; i < NSLOTS; i++)
        if ((c.off[i] = slot_offset(frame_state, SLOT_NAMES[i])) < 0) return NULL;
    PyObject *slots = PyObject_GetAttrString(frame_state, "__slots__");
    if (slots == NULL) return NULL;
    Py_ssize_t nslots = PyObject_Length(slots);
    Py_DECREF(slots);
    if (nslots < 0) return NULL;
    if (nslots != NSLOTS) { /* new_frame() sets every slot: it must know them all */
        PyErr_SetString(PyExc_TypeError, "FrameState has other __slots__ than the accelerator knows");
        return NULL;
    }
    for (int i = 0; i < NENC; i++)
        if ((c.enc_off[i] = slot_offset(encoder_type, ENC_NAMES[i])) < 0) return NULL;
    PyObject *structs = PyImport_ImportModule("msgspec.structs");
    if (structs == NULL) return NULL;
    c.replace = PyObject_GetAttrString(structs, "replace");
    Py_DECREF(structs);
    c.empty = PyTuple_New(0);
    c.line_event = PyLong_FromLong(0); /* recorder.LINE */
    c.str_int = PyUnicode_InternFromString("int");
    c.str_str = PyUnicode_InternFromString("str");
    if (c.replace == NULL || c.empty == NULL || c.line_event == NULL || c.str_int == NULL || c.str_str == NULL) {
        Py_XDECREF(c.replace);
        Py_XDECREF(c.empty);
        Py_XDECREF(c.line_event);
        Py_XDECREF(c.str_int);
        Py_XDECREF(c.str_str);
        return NULL;
    }
    PyObject *refs[] = {value_type, edit_type,  splice_type, deleted,     missing,   safe,
                        encoder_type, step_type, exception_type, small_ints, event_names, frame_state};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) Py_INCREF(refs[i]);
    c.value_type = value_type, c.edit_type = edit_type, c.splice_type = splice_type, c.deleted = deleted;
    c.missing = missing, c.safe_iterables = safe, c.encoder_type = encoder_type, c.step_type = step_type;
    c.exception_type = exception_type, c.small_ints = small_ints, c.event_names = event_names;
    c.frame_state_type = frame_state;
    Config previous = C;
    C = c;
    PyObject *olds[] = {previous.value_type, previous.edit_type,    previous.splice_type, previous.deleted,
                        previous.missing,    previous.safe_iterables, previous.encoder_type, previous.line_event,
                        previous.replace,    previous.empty,         previous.step_type,   previous.exception_type,
                        previous.small_ints, previous.event_names,   previous.str_int,     previous.str_str,
                        previous.frame_state_type};
    for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) Py_XDECREF(olds[i]);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ finish */

/* One raw change as finish() makes it a Value (new reference), or the Edit or DELETED marker itself. */
static PyObject *finished_value(PyObject *value, PyObject *encode, Py_ssize_t max_str) {
    PyTypeObject *cls = Py_TYPE(value);
    if (cls == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) return NULL;
        if (!overflow) {  /* in [-INT64, INT64): inline */
            PyObject *small = PyDict_GetItemWithError(C.small_ints, value);
            if (small != NULL) return Py_NewRef(small);
            if (PyErr_Occurred()) return NULL;
            return PyObject_CallFunctionObjArgs(C.value_type, C.str_int, value, NULL);
        }
    } else if (cls == &PyUnicode_Type && PyUnicode_GET_LENGTH(value) <= max_str) {
        return PyObject_CallFunctionObjArgs(C.value_type, C.str_str, value, NULL);
    }
    if (cls == (PyTypeObject *)C.edit_type || cls == (PyTypeObject *)C.value_type) return Py_NewRef(value);
    return PyObject_CallOneArg(encode, value);
}

/* Recorder._build's steps: build_steps(events, fids, line_numbers, changes, payloads, encode, max_str, any_deleted) */
static PyObject *build_steps(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1]) || !PyList_CheckExact(args[2]) ||
        !PyDict_CheckExact(args[3]) || !PyDict_CheckExact(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "build_steps(events, fids, line_numbers, changes, payloads, encode, max_str, any_deleted)");
        return NULL;
    }
    if (C.step_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tracer._accel.configure() was not called");
        return NULL;
    }
    PyObject *events = args[0], *fids = args[1], *lines = args[2], *changes_at = args[3], *payloads = args[4];
    PyObject *encode = args[5];
    Py_ssize_t max_str = PyLong_AsSsize_t(args[6]);
    if (max_str == -1 && PyErr_Occurred()) return NULL;
    int any_deleted = PyObject_IsTrue(args[7]);
    if (any_deleted < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(events);
    if (PyList_GET_SIZE(fids) != n || PyList_GET_SIZE(lines) != n) {
        PyErr_SetString(PyExc_ValueError, "events, fids and line_numbers differ in length");
        return NULL;
    }
    PyObject *steps = PyList_New(n);
    if (steps == NULL) return NULL;
    for (Py_ssize_t index = 0; index < n; index++) {
        PyObject *key = NULL, *raw = NULL, *edits = NULL, *deleted = NULL, *kept = NULL, *step = NULL;
        long event = PyLong_AsLong(PyList_GET_ITEM(events, index));
        if (event == -1 && PyErr_Occurred()) goto fail;
        if (event < 0 || event >= PyTuple_GET_SIZE(C.event_names)) {
            PyErr_SetString(PyExc_ValueError, "an unknown event");
            goto fail;
        }
        PyObject *call[6] = {PyList_GET_ITEM(fids, index), PyList_GET_ITEM(lines, index),
                             PyTuple_GET_ITEM(C.event_names, event)};
        if ((key = PyLong_FromSsize_t(index)) == NULL) goto fail;
        raw = PyDict_GetItemWithError(changes_at, key);
        if (raw == NULL && PyErr_Occurred()) goto fail;
        if (raw == NULL || PyDict_GET_SIZE(raw) == 0) {
            step = PyObject_Vectorcall(C.step_type, call, event == 0 ? 2 : 3, NULL);
        } else {  /* the raw changes become Step.changes, edits and deletions set apart */
            Py_INCREF(raw);
            if ((edits = PyDict_New()) == NULL || (deleted = PyList_New(0)) == NULL) goto fail_step;
            Py_ssize_t pos = 0;
            PyObject *name, *value;
            while (PyDict_Next(raw, &pos, &name, &value)) {
                PyObject *v = finished_value(value, encode, max_str);
                if (v == NULL) goto fail_step;
                int r = Py_TYPE(v) == (PyTypeObject *)C.edit_type ? PyDict_SetItem(edits, name, v)
                                                                    : PyDict_SetItem(raw, name, v);
                Py_DECREF(v);
                if (r < 0) goto fail_step;
            }
            if (any_deleted) {
                pos = 0;
                while (PyDict_Next(raw, &pos, &name, &value))
                    if (value == C.deleted && PyList_Append(deleted, name) < 0) goto fail_step;
            }
            if (PyDict_GET_SIZE(edits) || PyList_GET_SIZE(deleted)) {
                if ((kept = PyDict_New()) == NULL) goto fail_step;
                pos = 0;
                while (PyDict_Next(raw, &pos, &name, &value))
                    if (Py_TYPE(value) == (PyTypeObject *)C.value_type && value != C.deleted &&
                        PyDict_SetItem(kept, name, value) < 0)
                        goto fail_step;
                Py_SETREF(raw, kept);
                kept = NULL;
            }
            call[3] = raw, call[4] = edits, call[5] = deleted;
            step = PyObject_Vectorcall(C.step_type, call, 6, NULL);
        }
        if (step == NULL) goto fail_step;
        if (event > 1) {  /* after CALL: return and exception steps carry a payload */
            PyObject *payload = PyDict_GetItemWithError(payloads, key);
            if (payload == NULL && PyErr_Occurred()) goto fail_step;
            if (payload != NULL && payload != Py_None) {
                PyObject *field = interned(Py_TYPE(payload) == (PyTypeObject *)C.exception_type ? "exception" : "value");
                if (field == NULL || PyObject_SetAttr(step, field, payload) < 0) goto fail_step;
            }
        }
        PyList_SET_ITEM(steps, index, step);
        Py_XDECREF(raw);
        Py_XDECREF(edits);
        Py_XDECREF(deleted);
        Py_DECREF(key);
        continue;
    fail_step:
        Py_XDECREF(step);
        Py_XDECREF(raw);
        Py_XDECREF(edits);
        Py_XDECREF(deleted);
        Py_XDECREF(kept);
    fail:
        Py_XDECREF(key);
        Py_DECREF(steps);
        return NULL;
    }
    return steps;
}

#define HOT_FIELDS(X)                                                                                              \
    X(rec) X(events) X(fids) X(line_numbers) X(changes) X(states) X(payloads) X(encoder) X(py_line) X(py_check)      \
    X(py_check_caps) X(py_failed) X(py_encode) X(py_new_frame) X(py_call) X(py_returned) X(infos)     \
    X(threads) X(frames) X(other)

static int Hot_traverse(Hot *h, visitproc visit, void *arg) {
#define VISIT(f) Py_VISIT(h->f);
    HOT_FIELDS(VISIT)
#undef VISIT
    return 0;
}

static int Hot_clear(Hot *h) {
#define CLEAR(f) Py_CLEAR(h->f);
    HOT_FIELDS(CLEAR)
#undef CLEAR
    return 0;
}

static void Hot_dealloc(Hot *h) {
    PyObject_GC_UnTrack(h);
    Hot_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyMethodDef Hot_methods[] = {
    {"line", (PyCFunction)(void (*)(void))Hot_line, METH_FASTCALL, "line(frame, line): Recorder.line"},
    {"settle", (PyCFunction)(void (*)(void))Hot_settle, METH_FASTCALL, "settle(st, frame): Recorder._settle"},
    {"diff_all", (PyCFunction)(void (*)(void))Hot_diff_all, METH_FASTCALL, "diff_all(st, frame): Recorder._diff_all"},
    {"monitor_line", (PyCFunction)(void (*)(void))Hot_monitor_line, METH_FASTCALL,
     "monitor_line(code, line): a sys.monitoring LINE callback"},
    {"monitor_start", (PyCFunction)(void (*)(void))Hot_monitor_start, METH_FASTCALL,
     "monitor_start(code, offset): a sys.monitoring PY_START and PY_RESUME callback (Recorder.call)"},
    {"monitor_return", (PyCFunction)(void (*)(void))Hot_monitor_return, METH_FASTCALL,
     "monitor_return(code, offset, value): a sys.monitoring PY_RETURN callback (Recorder.returned)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Hot_members[] = {
    {"active", T_BOOL, offsetof(Hot, active), 0, "as a trace function: record (True) or detach (False)"},
    {"other", T_OBJECT, offsetof(Hot, other), 0, "as a trace function: what gets every event but 'line'"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject HotType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tracer._accel.Hot",
    .tp_basicsize = sizeof(Hot),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The recorder's line events, compiled (see the module docstring).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hot_init,
    .tp_dealloc = (destructor)Hot_dealloc,
    .tp_traverse = (traverseproc)Hot_traverse,
    .tp_clear = (inquiry)Hot_clear,
    .tp_call = (ternaryfunc)Hot_call,
    .tp_methods = Hot_methods,
    .tp_members = Hot_members,
};

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, FrameState, Encoder, Value, Edit, Splice, Step, ExceptionInfo, SMALL_INTS, EVENTS, DELETED, "
     "MISSING, SAFE_ITERABLES): once, before anything else"},
    {"build_steps", (PyCFunction)(void (*)(void))build_steps, METH_FASTCALL,
     "build_steps(events, fids, line_numbers, changes, payloads, encode, max_str, any_deleted): Recorder._build's steps"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tracer._accel", "The compiled accelerator of the recorder's line events.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__accel(void) {
    if (PyType_Ready(&HotType) < 0) return NULL;
    str_line = PyUnicode_InternFromString("line");
    str_any_deleted = PyUnicode_InternFromString("any_deleted");
    str_whole = PyUnicode_InternFromString("whole");
    if (str_line == NULL || str_any_deleted == NULL || str_whole == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&HotType);
    if (PyModule_AddObject(m, "Hot", (PyObject *)&HotType) < 0) {
        Py_DECREF(&HotType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
