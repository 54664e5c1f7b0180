"""Build the default SPA: spa-src/ (plain ES modules, no dependencies) -> spa/ (what nginx serves).

Every asset gets its content hash in its name, so nginx can cache it for a year; an ES module's
hash covers the hashed names of what it imports, so a change anywhere renames everything that
depends on it. Files of 512 bytes or more also get a .gz twin for nginx's gzip_static. The output is
deterministic (a unit test rebuilds it and compares with what is committed).

    python services/nginx/build_spa.py [SOURCE] [TARGET]
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMPORT = re.compile(r"""(\bfrom\s+|\bimport\s+)(["'])\./([\w.-]+)\2""")
ASSET_REFERENCE = re.compile(r"""(["'])/assets/([\w.-]+)\1""")
GZIP_MIN_BYTES = 512


def hashed_name(name: str, content: bytes) -> str:
    stem, dot, extension = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(content).hexdigest()[:10]}{dot}{extension}"


def build(source: Path, target: Path) -> dict[str, str]:
    """Write the hashed SPA into ``target`` (replacing it); return {source name: hashed name}."""
    assets = {path.name: path.read_bytes() for path in sorted((source / "assets").iterdir()) if path.is_file()}
    names: dict[str, str] = {}
    built: dict[str, bytes] = {}

    def resolve(name: str, chain: tuple[str, ...] = ()) -> str:
        if name in names:
            return names[name]
        if name in chain:
            raise SystemExit(f"build_spa: import cycle {' -> '.join((*chain, name))}")
        if name not in assets:
            raise SystemExit(f"build_spa: {chain[-1] if chain else 'index.html'} refers to missing assets/{name}")
        content = assets[name]
        if name.endswith(".js"):
            text = content.decode()
            text = IMPORT.sub(lambda m: f"{m[1]}{m[2]}./{resolve(m[3], (*chain, name))}{m[2]}", text)
            content = text.encode()
        names[name] = hashed_name(name, content)
        built[names[name]] = content
        return names[name]

    for name in assets:
        resolve(name)
    index = (source / "index.html").read_text()
    index = ASSET_REFERENCE.sub(lambda m: f"{m[1]}/assets/{resolve(m[2])}{m[1]}", index)

    if target.exists():
        shutil.rmtree(target)
    (target / "assets").mkdir(parents=True)
    write(target / "index.html", index.encode())
    for name, content in built.items():
        write(target / "assets" / name, content)
    return names


def write(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    if len(content) >= GZIP_MIN_BYTES:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(content, compresslevel=9, mtime=0))


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "spa-src"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "spa"
    for original, hashed in build(source, target).items():
        print(f"{original:>14} -> assets/{hashed}")
