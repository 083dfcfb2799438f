"""Public names of a package, importable from the package but loaded only when first used (PEP 562).

A package `__init__` that imported every module of its package would load torch and transformers for anyone who
imports one small module of it, and would tie the packages into import cycles (a module of `reading` importing
`model.registry`, which imports `reading.cache`, ...). So each package lists its public names and the module
that defines them, and `lazy_exports` resolves a name when it is first asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for a package whose public names live in its modules.

    Args:
        package: the package's `__name__`.
        exports: {public name: module of the package that defines it}.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
