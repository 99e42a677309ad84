"""Named choices: one :class:`Registry` per kind (base losses, DAR estimators, metrics ...).

A registry maps a name (what a config or a keyword argument says, ``"proxyanchor"``) to the
object that implements it, with an optional ``kind`` tag (``"pair"``, ``"proxy"``,
``"two_view"`` ...) and the options the entry accepts. It is the single home of a choice:
the names a config may use, the error for a wrong one, and the builder all come from it.

Adding a choice is one decorated function next to the built-in ones (or in a plugin module,
see ``docs/EXTENDING.md``)::

    >>> from dasl.registry import Registry
    >>> colours = Registry[str]("colour")
    >>> _ = colours.register("red", "#f00")
    >>> _ = colours.register("green", "#0f0")
    >>> colours.get("red")
    '#f00'
    >>> colours.get("gren")
    Traceback (most recent call last):
    ...
    dasl.errors.ConfigError: unknown colour 'gren'; choose one of red, green (did you mean green?)

Framework-free (no torch): it sits below everything that registers into it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from dasl.errors import ConfigError

T = TypeVar("T")


def did_you_mean(key: str, known: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean optim.lr?)`` for the closest known key (difflib), else ``""``."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def unknown_choice(what: str, value: object, valid: Iterable[Any]) -> ConfigError:
    """The one wording of a wrong name: ``unknown <what> 'x'; choose one of a, b, c`` plus the
    closest valid name when one is close."""
    names = [str(v) for v in valid]
    guess = did_you_mean(value, names) if isinstance(value, str) else ""
    return ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(names)}{guess}")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered choice: its name, the object, a kind tag, the options it accepts
    (name -> default; :data:`REQUIRED` when it has none) and a display title."""

    name: str
    obj: T
    kind: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    title: str | None = None


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of an option that must be given (a keyword-only parameter without a default)."""


def keyword_options(fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword-only parameters of ``fn`` as ``{name: default or REQUIRED}``: a builder's
    options are declared once, in its signature."""
    return {
        p.name: REQUIRED if p.default is inspect.Parameter.empty else p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


class Registry(Generic[T]):
    """Names -> objects for one kind of choice (``what`` names it in messages).

    ``home``: the module that registers the built-in entries, imported on first use.
    ``register(name, obj, kind=..., options=..., title=...)`` adds an entry (also usable as a
    decorator without ``obj``); ``options=None`` takes the keyword-only parameters of a
    callable ``obj``. ``get(name, kind=None)`` returns the object or raises
    :class:`ConfigError` in the one wording (:func:`unknown_choice`); ``names(kind=None)``
    lists the names in registration order; ``check_options`` refuses options an entry
    does not take.
    """

    def __init__(self, what: str, home: str | None = None) -> None:
        self.what = what
        self.home = home
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = home is None

    def load(self) -> None:
        """Import the ``home`` module that registers the built-in entries, once, on first use:
        the registry itself stays free of torch, so reading a config (and ``dasl --help``)
        does not pay for the libraries behind the builders (#16)."""
        if self._loaded:
            return
        self._loaded = True  # before the import: the home's own register() calls land here
        try:
            assert self.home is not None
            importlib.import_module(self.home)
        except BaseException:
            self._loaded = False
            raise

    @overload
    def register(
        self,
        name: str,
        obj: None = None,
        *,
        kind: str | None = None,
        options: Mapping[str, Any] | None = None,
        title: str | None = None,
    ) -> Callable[[T], T]: ...

    @overload
    def register(
        self,
        name: str,
        obj: T,
        *,
        kind: str | None = None,
        options: Mapping[str, Any] | None = None,
        title: str | None = None,
    ) -> T: ...

    def register(
        self,
        name: str,
        obj: T | None = None,
        *,
        kind: str | None = None,
        options: Mapping[str, Any] | None = None,
        title: str | None = None,
    ) -> T | Callable[[T], T]:
        """Add ``name``; a second registration of a taken name is refused (a plugin must not
        silently replace a built-in)."""

        def add(target: T) -> T:
            self.load()  # built-ins first, so names() lists them first
            if not isinstance(name, str) or not name:
                raise ConfigError(f"a {self.what} name must be a non-empty string, got {name!r}")
            old = self._entries.get(name)
            if old is not None and old.obj is not target:
                raise ConfigError(f"{self.what} {name!r} is already registered")
            opts = options
            if opts is None:
                opts = keyword_options(target) if callable(target) else {}
            self._entries[name] = Entry(name, target, kind, dict(opts), title)
            return target

        return add if obj is None else add(obj)

    def register_names(self, names: Iterable[str], kind: str | None = None) -> None:
        """Register each of ``names`` as its own entry: a choice that is only a name (a
        measure, a pooling), read by the code that implements it."""
        for name in names:
            self.register(name, name, kind=kind, options={})  # type: ignore[arg-type]  # T is str for name-only registries

    def entry(self, name: object, kind: str | Iterable[str] | None = None) -> Entry[T]:
        """The entry of ``name`` (of one of the ``kind`` tags when given)."""
        valid = self.names(kind)
        if not isinstance(name, str) or name not in valid:
            raise unknown_choice(self.what, name, valid)
        return self._entries[name]

    def get(self, name: object, kind: str | Iterable[str] | None = None) -> T:
        """The object registered as ``name``."""
        return self.entry(name, kind).obj

    def names(self, kind: str | Iterable[str] | None = None) -> tuple[str, ...]:
        """Registered names (with one of the ``kind`` tags when given), in registration order."""
        self.load()
        if kind is None:
            return tuple(self._entries)
        kinds = {kind} if isinstance(kind, str) else set(kind)
        return tuple(n for n, e in self._entries.items() if e.kind in kinds)

    def takers(self, option: str, kind: str | Iterable[str] | None = None) -> tuple[str, ...]:
        """Names (of ``kind``) whose entries take ``option``."""
        return tuple(n for n in self.names(kind) if option in self._entries[n].options)

    def check_options(
        self,
        name: str,
        given: Mapping[str, Any],
        prefix: str = "",
        kind: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """The options of ``given`` that are set (not ``None``), checked against ``name``'s
        entry: one it does not take, or a required one left unset, is a :class:`ConfigError`
        naming ``<prefix><option>``. Returns the set options."""
        entry = self.entry(name, kind)
        out = {k: v for k, v in given.items() if v is not None}
        for key in out:
            if key not in entry.options:
                users = self.takers(key, kind)
                only = f" (only by {', '.join(users)})" if users else ""
                raise ConfigError(
                    f"{prefix}{key}: not used by {self.what} {name!r}{only}; set it to null"
                )
        for key, default in entry.options.items():
            if default is REQUIRED and key not in out:
                raise ConfigError(f"{prefix}{key}: {self.what} {name!r} needs a value")
        return out

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"
