"""`mergekit-plugins list`: every merge method in mergekit's registry, ours and mergekit's, with what the commands
can do with it (read from the plugins' declarations: θ₀ + s·merged for `search-alpha`'s in-memory sweep, a
factor kernel for `lora-merge`).

Example:
    >>> "tsv" in format_methods()
    True
"""

from __future__ import annotations

from typing import Any


def method_rows() -> list[dict[str, Any]]:
    """One row per registered merge method: name, distribution, pretty name, base policy, parameters, capabilities."""
    from importlib.metadata import version

    from mergekit.merge_methods import registry as mk_registry

    from mergekit_plugins.plugins import declarations, linear_scale_parameter, registry

    declared = declarations()
    ours = registry()
    mergekit_dist = f"mergekit {version('mergekit')}"
    rows = []
    for method in sorted(mk_registry.registered_methods(), key=lambda m: m.spec.name):
        spec = method.spec
        item = ours.get(spec.name)
        capabilities = declared[spec.name].capabilities() if spec.name in declared else []
        param = linear_scale_parameter(spec.name)
        if param is not None and not capabilities:  # mergekit's task-arithmetic family
            capabilities = [f"θ₀ + {param}·merged"]
        params = []
        for p in spec.parameters:
            scope = "" if p.scope.value == "shared" else f" [{p.scope.value}]"
            default = "required" if p.required else f"= {p.default!r}"
            params.append(f"{p.name}{scope} {default}")
        rows.append(
            {
                "name": spec.name,
                "distribution": item.distribution
                if item is not None and item.obj.method is method
                else mergekit_dist,
                "pretty_name": spec.pretty_name or "",
                "base_model": spec.contract.base.value,
                "parameters": params,
                "capabilities": capabilities,
            }
        )
    return rows


def format_methods() -> str:
    """A plain-text table of `method_rows()`."""
    rows = method_rows()
    width = max(len(r["name"]) for r in rows)
    dist_width = max(len(r["distribution"]) for r in rows)
    caps = [", ".join(r["capabilities"]) or "-" for r in rows]
    cap_width = max(len(c) for c in caps)
    lines = [
        f"{'method'.ljust(width)}  {'distribution'.ljust(dist_width)}  base      "
        f"{'capabilities'.ljust(cap_width)}  parameters"
    ]
    for r, cap in zip(rows, caps, strict=True):
        lines.append(
            f"{r['name'].ljust(width)}  {r['distribution'].ljust(dist_width)}  {r['base_model']:<8}  "
            f"{cap.ljust(cap_width)}  " + ", ".join(r["parameters"])
        )
    return "\n".join(lines)
