"""execalign's tests (a package, so that `tests.*` never resolves to a third-party `tests` package)."""
