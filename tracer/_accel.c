/* The compiled accelerator of the recorder's hot path: line events.
 *
 * `Hot(recorder, FrameState, Value, Edit, DELETED, MISSING, SAFE_ITERABLES)` does,
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
 * Entry points: `Hot.monitor_line(code, line)` (a sys.monitoring LINE
 * callback), the object itself as a sys.settrace local trace function (line
 * events here, every other event to `Hot.other`, the backend's Python
 * function), and `Hot.line(frame, line)` (what `Recorder.line` does).
 * An error in a callback (a bug of ours, the recursion limit) goes to
 * `Recorder.failed` and never reaches the traced program.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>
#include <math.h>

enum { S_SEEN, S_FLATS, S_REFS, S_LINES, S_LAST, S_PENDING, S_PREV_LINE, S_FID, S_DEFINED, S_INFO, S_IS_MODULE, NSLOTS };
static const char *SLOT_NAMES[NSLOTS] = {
    "seen", "flats", "refs", "lines", "last", "pending", "prev_line", "fid", "defined", "info", "is_module",
};
enum { E_NODES, E_SAW_DEFAULTDICT, NENC };
static const char *ENC_NAMES[NENC] = {"nodes", "saw_defaultdict"};

/* LineInfo and CodeInfo fields (tracer.codeinfo NamedTuples) */
enum { LI_STORES, LI_MUTATES, LI_INPLACE, LI_SUBSCRIPT, LI_ITERATES };
enum { CI_GLOBALS_WRITTEN = 1 };

typedef struct {
    PyObject_HEAD
    PyObject *rec, *events, *fids, *line_numbers, *changes, *states, *encoder;
    PyObject *py_line, *py_check, *py_attach, *py_check_caps, *py_failed;
    PyObject *value_type, *edit_type, *deleted, *missing, *safe_iterables, *line_event;
    PyObject *other;
    Py_ssize_t max_steps, max_values, max_items;
    Py_ssize_t off[NSLOTS], enc_off[NENC];
    char active;
} Hot;

#define SLOT(h, st, i) (*(PyObject **)((char *)(st) + (h)->off[i]))
#define ENC(h, i) (*(PyObject **)((char *)(h)->encoder + (h)->enc_off[i]))

static PyObject *str_line, *str_any_deleted;

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

/* Is the list or dict `obj` made of the very elements its flat (length, ids, held, cls) holds? */
static int flat_unchanged(Hot *h, PyObject *flat, PyObject *obj) {
    PyObject *held = PyTuple_GET_ITEM(flat, 2);
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

/* recorder._check; `obj` is h->missing for an unbound name. */
static int check(Hot *h, PyObject *st, PyObject *name, PyObject *obj, PyObject *changes) {
    PyObject *seen = SLOT(h, st, S_SEEN);
    PyObject *old = PyDict_GetItemWithError(seen, name);
    if (old == NULL) {
        if (PyErr_Occurred()) return -1;
        old = h->missing;
    }
    if (old == obj) return 0;
    PyTypeObject *cls = Py_TYPE(obj);
    if (is_atom(cls)) {
        int result = -1;
        Py_INCREF(old);
        if (PyDict_SetItem(seen, name, obj) < 0) goto atom_done;
        if (Py_TYPE(old) == (PyTypeObject *)h->value_type) {
            if (forget(h, st, name) < 0) goto atom_done;
        } else if (old != h->missing) {
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
    if (obj == h->missing) {
        int result = -1;
        Py_INCREF(old);
        if (PyDict_DelItem(seen, name) < 0) goto missing_done;
        if (Py_TYPE(old) == (PyTypeObject *)h->value_type && forget(h, st, name) < 0) goto missing_done;
        if (PyDict_SetItem(changes, name, h->deleted) < 0) goto missing_done;
        if (PyObject_SetAttr(h->rec, str_any_deleted, Py_True) < 0) goto missing_done;
        result = 0;
    missing_done:
        Py_DECREF(old);
        return result;
    }
    if (Py_TYPE(old) == (PyTypeObject *)h->value_type) {
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
        if (flat != NULL && PyTuple_CheckExact(flat) && PyTuple_GET_SIZE(flat) == 4 &&
            PyTuple_GET_ITEM(flat, 3) == (PyObject *)cls) {
            int same = flat_unchanged(h, flat, obj);
            if (same != 0) return same < 0 ? -1 : 0;
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
            int r = check(h, st, name, obj ? obj : h->missing, changes);
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
            if (check(h, st, PyList_GET_ITEM(gone, i), h->missing, changes) < 0) goto error;
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
        int r = check(h, st, name, obj ? obj : h->missing, changes);
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

/* recorder._attach (changes holding an Edit go to the recorder's own) */
static int attach(Hot *h, PyObject *st, PyObject *changes) {
    if (PyDict_GET_SIZE(changes) == 0) return 0;
    Py_ssize_t pos = 0;
    PyObject *name, *value;
    while (PyDict_Next(changes, &pos, &name, &value)) {
        if (Py_TYPE(value) == (PyTypeObject *)h->edit_type) {
            PyObject *args[2] = {st, changes};
            PyObject *r = PyObject_Vectorcall(h->py_attach, args, 2, NULL);
            Py_XDECREF(r);
            return r == NULL ? -1 : 0;
        }
    }
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
    pos = 0;
    while (PyDict_Next(changes, &pos, &name, &value)) {
        if ((existing != NULL && PyDict_SetItem(existing, name, value) < 0) || PyDict_SetItem(defined, name, line) < 0) {
            Py_DECREF(line);
            return -1;
        }
    }
    Py_DECREF(line);
    return 0;
}

/* ------------------------------------------------------------ _settle, line */

static int is_safe_iterable(Hot *h, PyObject *value) {
    PyTypeObject *t = Py_TYPE(value);
    if (!Py_IS_TYPE((PyObject *)t, &PyType_Type)) return 0;  /* a metaclass: hash nothing of it */
    return PySet_Contains(h->safe_iterables, (PyObject *)t);
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
        if (full && PyDict_Check(locals) && !plain_keys(locals)) {  /* the recorder reads it (and fails) its way */
            PyObject *r = PyObject_CallMethod(h->rec, "_diff_all", "OO", st, frame);
            if (r == NULL) goto done;
            changes = r;
        } else if (full) {
            changes = diff_all(h, st, frame, locals);
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
    for (int i = 0; i < NSLOTS; i++)
        if (require(SLOT(h, st, i), SLOT_NAMES[i]) < 0) goto done;
    if (settle(h, st, frame) < 0) goto done;
    Py_ssize_t index = PyList_GET_SIZE(h->events);
    if (PyList_Append(h->events, h->line_event) < 0 || PyList_Append(h->fids, SLOT(h, st, S_FID)) < 0 ||
        PyList_Append(h->line_numbers, line) < 0)
        goto done;
    if (set_int_slot(&SLOT(h, st, S_LAST), index) < 0) goto done;
    set_slot(&SLOT(h, st, S_PENDING), SLOT(h, st, S_LAST));
    set_slot(&SLOT(h, st, S_PREV_LINE), line);
    Py_ssize_t nodes = PyLong_AsSsize_t(ENC(h, E_NODES));
    if (nodes == -1 && PyErr_Occurred()) goto done;
    if (index + 1 >= h->max_steps || nodes >= h->max_values) {
        PyObject *r = PyObject_CallNoArgs(h->py_check_caps);
        if (r == NULL) goto done;
        Py_DECREF(r);
    }
    result = 0;
done:
    Py_DECREF(st);
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

static PyObject *Hot_monitor_line(Hot *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "monitor_line(code, line)");
        return NULL;
    }
    PyObject *frame = (PyObject *)PyEval_GetFrame();  /* the user frame: no Python frame lies between */
    if (frame != NULL && hot_line(h, frame, args[1]) < 0 && failed(h) < 0) return NULL;
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
    PyObject *rec, *frame_state, *value_type, *edit_type, *deleted, *missing, *safe;
    if (!PyArg_UnpackTuple(args, "Hot", 7, 7, &rec, &frame_state, &value_type, &edit_type, &deleted, &missing, &safe))
        return -1;
    if (!PyType_Check(frame_state) || !PyType_Check(value_type) || !PyType_Check(edit_type) ||
        !PyFrozenSet_Check(safe)) {
        PyErr_SetString(PyExc_TypeError, "Hot(recorder, FrameState, Value, Edit, DELETED, MISSING, SAFE_ITERABLES)");
        return -1;
    }
    for (int i = 0; i < NSLOTS; i++)
        if ((h->off[i] = slot_offset(frame_state, SLOT_NAMES[i])) < 0) return -1;
    PyObject *encoder = PyObject_GetAttrString(rec, "encoder");
    if (encoder == NULL) return -1;
    Py_XSETREF(h->encoder, encoder);
    for (int i = 0; i < NENC; i++)
        if ((h->enc_off[i] = slot_offset((PyObject *)Py_TYPE(encoder), ENC_NAMES[i])) < 0) return -1;
    struct { PyObject **field; const char *name; int is_type; } fields[] = {
        {&h->events, "events", 1}, {&h->fids, "fids", 1}, {&h->line_numbers, "line_numbers", 1},
        {&h->changes, "changes", 2}, {&h->states, "states", 2},
        {&h->py_line, "line", 0}, {&h->py_check, "_check", 0}, {&h->py_attach, "_attach", 0},
        {&h->py_check_caps, "_check_caps", 0}, {&h->py_failed, "failed", 0},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        PyObject *v = PyObject_GetAttrString(rec, fields[i].name);
        if (v == NULL) return -1;
        if ((fields[i].is_type == 1 && !PyList_CheckExact(v)) || (fields[i].is_type == 2 && !PyDict_CheckExact(v))) {
            Py_DECREF(v);
            PyErr_Format(PyExc_TypeError, "Recorder.%s has an unexpected type", fields[i].name);
            return -1;
        }
        Py_XSETREF(*fields[i].field, v);
    }
    PyObject *limits = PyObject_GetAttrString(encoder, "limits");
    if (limits == NULL) return -1;
    PyObject *max_items = PyObject_GetAttrString(limits, "max_items");
    Py_DECREF(limits);
    if (max_items == NULL) return -1;
    h->max_items = PyLong_AsSsize_t(max_items);
    Py_DECREF(max_items);
    PyObject *max_steps = PyObject_GetAttrString(rec, "max_steps"), *max_values = PyObject_GetAttrString(rec, "max_values");
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
    Py_XSETREF(h->rec, Py_NewRef(rec));
    Py_XSETREF(h->value_type, Py_NewRef(value_type));
    Py_XSETREF(h->edit_type, Py_NewRef(edit_type));
    Py_XSETREF(h->deleted, Py_NewRef(deleted));
    Py_XSETREF(h->missing, Py_NewRef(missing));
    Py_XSETREF(h->safe_iterables, Py_NewRef(safe));
    PyObject *zero = PyLong_FromLong(0);  /* recorder.LINE */
    if (zero == NULL) return -1;
    Py_XSETREF(h->line_event, zero);
    return 0;
}

#define HOT_FIELDS(X)                                                                                              \
    X(rec) X(events) X(fids) X(line_numbers) X(changes) X(states) X(encoder) X(py_line) X(py_check) X(py_attach)    \
    X(py_check_caps) X(py_failed) X(value_type) X(edit_type) X(deleted) X(missing) X(safe_iterables) X(line_event) \
    X(other)

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
    {"monitor_line", (PyCFunction)(void (*)(void))Hot_monitor_line, METH_FASTCALL,
     "monitor_line(code, line): a sys.monitoring LINE callback"},
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

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tracer._accel", "The compiled accelerator of the recorder's line events.", -1, NULL,
};

PyMODINIT_FUNC PyInit__accel(void) {
    if (PyType_Ready(&HotType) < 0) return NULL;
    str_line = PyUnicode_InternFromString("line");
    str_any_deleted = PyUnicode_InternFromString("any_deleted");
    if (str_line == NULL || str_any_deleted == NULL) return NULL;
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
