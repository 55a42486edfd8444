"""Registries that map config ``type`` names to classes or functions.

A config such as ``dict(type='FPN', in_channels=[256, 512], out_channels=256)``
is turned into an object by :func:`build_from_cfg`, which looks ``type`` up in
a :class:`Registry`. Type names follow mmdetection 2.x so that configs written
for it build unchanged here.
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable


class Registry:
    """A name -> class/function table.

    Args:
        name: what the registry holds, used in error messages ("model", "pipeline", ...).
        parent: a registry whose entries are visible from this one (lookups fall back to it).
    """

    def __init__(self, name: str, parent: "Registry | None" = None):
        self.name = name
        self.parent = parent
        self._module_dict: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._module_dict)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __repr__(self) -> str:
        return f"Registry(name={self.name!r}, items={sorted(self._module_dict)})"

    @property
    def module_dict(self) -> dict[str, Any]:
        return self._module_dict

    def keys(self) -> list[str]:
        names = set(self._module_dict)
        if self.parent is not None:
            names |= set(self.parent.keys())
        return sorted(names)

    def get(self, key: str):
        if key in self._module_dict:
            return self._module_dict[key]
        if self.parent is not None:
            return self.parent.get(key)
        return None

    def register_module(self, name: str | list[str] | None = None, force: bool = False,
                        module: Any = None) -> Callable:
        """Register a class or function, as a decorator or a direct call.

        ``@REG.register_module()`` uses ``cls.__name__``; ``name=`` gives another
        (or several) names; ``force=True`` replaces an existing entry.
        """
        def _register(obj):
            names = name if isinstance(name, (list, tuple)) else [name or obj.__name__]
            for n in names:
                if not force and n in self._module_dict and self._module_dict[n] is not obj:
                    raise KeyError(f"'{n}' is already registered in the {self.name} registry "
                                   f"(by {self._module_dict[n]!r}); pass force=True to replace it")
                self._module_dict[n] = obj
            return obj

        if module is not None:
            return _register(module)
        return _register

    def closest(self, key: str, n: int = 3) -> list[str]:
        """Registered names that look most like ``key`` (for error messages)."""
        candidates = self.keys()
        lowered = {c.lower(): c for c in candidates}
        close = difflib.get_close_matches(key.lower(), list(lowered), n=n, cutoff=0.5)
        return [lowered[c] for c in close]


def build_from_cfg(cfg: dict, registry: Registry, default_args: dict | None = None):
    """Build an object from ``cfg['type']`` and the other keys as keyword arguments.

    ``default_args`` fill keys the config does not set. Errors name the type,
    the registry and, for an unknown type, the closest registered names.
    """
    if not isinstance(cfg, dict):
        raise TypeError(f"cfg must be a dict with a 'type' key, got {type(cfg).__name__}: {cfg!r}")
    if "type" not in cfg and not (default_args and "type" in default_args):
        raise KeyError(f"config for the {registry.name} registry has no 'type' key: {dict(cfg)!r}")
    args = dict(cfg)
    if default_args:
        for k, v in default_args.items():
            args.setdefault(k, v)
    obj_type = args.pop("type")
    if isinstance(obj_type, str):
        obj_cls = registry.get(obj_type)
        if obj_cls is None:
            hint = registry.closest(obj_type)
            hint_text = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
            raise KeyError(f"'{obj_type}' is not registered in the {registry.name} registry{hint_text} "
                           f"(registered: {len(registry.keys())} names, see mmdet.engine.registry)")
    elif inspect.isclass(obj_type) or callable(obj_type):
        obj_cls = obj_type
    else:
        raise TypeError(f"'type' must be a str or a class, got {type(obj_type).__name__}")
    try:
        return obj_cls(**args)
    except TypeError as e:
        name = getattr(obj_cls, "__name__", str(obj_cls))
        raise TypeError(f"{name} (from the {registry.name} registry) could not be built: {e}") from e
