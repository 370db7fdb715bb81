"""Inputs counted from external sources: proxies whose incidents come from the DSA
Transparency Database."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import InputError
from ..values import Value
from .schema import ModuleInput, validated

def resolve_sor(item: ModuleInput, year_dir: Path, path: Path, module: str) -> ModuleInput:
    """Count the incidents of proxies that cite the Transparency Database (their source text
    then says which files and filters gave the count)."""
    if not any(proxy.sor for proxy in item.probability.proxies):
        return item
    from ..sources.sor import Filters, aggregate

    proxies = []
    for index, proxy in enumerate(item.probability.proxies):
        if proxy.sor is None:
            proxies.append(proxy)
            continue
        if proxy.incidents is not None:
            raise InputError("give incidents or a sor reference that counts them, not both",
                             file=path, module=module, field=f"probability.proxies.{index}")
        ref = proxy.sor
        counted = aggregate(year_dir / ref.path, Filters(platforms=(ref.platform,), start=ref.start, end=ref.end),
                            engine=ref.engine)
        incidents = counted.proxy(platform=ref.platform, module=ref.module or module)
        files = ", ".join(f"{f['name']} (sha256 {f['sha256'][:12]})" for f in counted.provenance["files"])
        source = (f"{proxy.source}: {incidents:,} statements of {ref.platform} mapped to {ref.module or module}, "
                  f"{counted.provenance['rows_read']:,} rows read, {counted.provenance['rows_rejected']:,} rejected, "
                  f"{counted.provenance['rows_duplicate']:,} duplicates; "
                  f"files {files}")
        proxies.append(proxy.model_copy(update={"incidents": Value(float(incidents)), "source": source}))
    return validated(ModuleInput, {**item.model_dump(), "probability": {
        "basis": item.probability.basis, "proxies": [p.model_dump() for p in proxies]}}, path, module)
