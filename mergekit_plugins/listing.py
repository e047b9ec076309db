"""`mergekit-plugins list`: every merge method in mergekit's registry, ours and mergekit's.

Example:
    >>> "tsv" in format_methods()
    True
"""

from __future__ import annotations

from typing import Any


def method_rows() -> list[dict[str, Any]]:
    """One row per registered merge method: name, distribution, pretty name, base policy, parameters."""
    from importlib.metadata import version

    from mergekit.merge_methods import registry as mk_registry

    from mergekit_plugins.plugins import load_plugins, registry

    load_plugins()
    ours = registry()
    mergekit_dist = f"mergekit {version('mergekit')}"
    rows = []
    for method in sorted(mk_registry.registered_methods(), key=lambda m: m.spec.name):
        spec = method.spec
        item = ours.get(spec.name)
        params = []
        for p in spec.parameters:
            scope = "" if p.scope.value == "shared" else f" [{p.scope.value}]"
            default = "required" if p.required else f"= {p.default!r}"
            params.append(f"{p.name}{scope} {default}")
        rows.append(
            {
                "name": spec.name,
                "distribution": item.distribution
                if item is not None and item.obj is method
                else mergekit_dist,
                "pretty_name": spec.pretty_name or "",
                "base_model": spec.contract.base.value,
                "parameters": params,
            }
        )
    return rows


def format_methods() -> str:
    """A plain-text table of `method_rows()`."""
    rows = method_rows()
    width = max(len(r["name"]) for r in rows)
    dist_width = max(len(r["distribution"]) for r in rows)
    lines = [f"{'method'.ljust(width)}  {'distribution'.ljust(dist_width)}  base      parameters"]
    for r in rows:
        lines.append(
            f"{r['name'].ljust(width)}  {r['distribution'].ljust(dist_width)}  {r['base_model']:<8}  "
            + ", ".join(r["parameters"])
        )
    return "\n".join(lines)
