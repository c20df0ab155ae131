"""Synthesise a large proto tree for benchmarks: many packages, imports between files, streaming RPCs."""

from __future__ import annotations

import argparse
from pathlib import Path

HEADER = 'syntax = "proto3";\n\npackage {package};\n\n'


def render_file(pkg: int, idx: int, files_per_pkg: int) -> str:
    package = f"bench.p{pkg:03d}.v1"
    imports = ['import "google/protobuf/timestamp.proto";']
    refs: list[str] = []
    # Each file imports its predecessor in the package and one file of the previous package,
    # so the tree has real import chains (within and across packages).
    if idx > 0:
        imports.append(f'import "bench/p{pkg:03d}/v1/f{idx - 1:03d}.proto";')
        refs.append(f"bench.p{pkg:03d}.v1.Item{idx - 1:03d}")
    if pkg > 0:
        imports.append(f'import "bench/p{pkg - 1:03d}/v1/f{idx:03d}.proto";')
        refs.append(f"bench.p{pkg - 1:03d}.v1.Item{idx:03d}")
    name = f"Item{idx:03d}"
    lines = [HEADER.format(package=package), "\n".join(imports), "\n\n"]
    lines.append(f"// {name} is a synthetic resource.\nmessage {name} {{\n")
    lines.append("  // Identifier.\n  string id = 1;\n")
    lines.append("  // Display name.\n  string name = 2;\n")
    lines.append("  // Creation time.\n  google.protobuf.Timestamp create_time = 3;\n")
    lines.append(f"  // State.\n  {name}State state = 4;\n")
    lines.append("  // Labels.\n  map<string, string> labels = 5;\n")
    for n, ref in enumerate(refs):
        lines.append(f"  // Related item.\n  {ref} related_{n} = {10 + n};\n")
    lines.append(
        "  // Payload.\n  oneof payload {\n    // Text.\n    string text = 20;\n    // Number.\n    int64 number = 21;\n  }\n}\n\n"
    )
    lines.append(f"// {name}State is a lifecycle state.\nenum {name}State {{\n")
    upper = f"ITEM{idx:03d}_STATE"
    lines.append(f"  // Unset.\n  {upper}_UNSPECIFIED = 0;\n  // Live.\n  {upper}_ACTIVE = 1;\n}}\n\n")
    for rpc in ("Get", "List", "Upload", "Sync"):
        lines.append(
            f"// {rpc}{name}Request is a request.\nmessage {rpc}{name}Request {{\n  // Identifier.\n  string id = 1;\n}}\n\n"
        )
        lines.append(
            f"// {rpc}{name}Response is a response.\nmessage {rpc}{name}Response {{\n  // Item.\n  {name} item = 1;\n}}\n\n"
        )
    if idx % 2 == 0:  # half of the files carry a service with all four RPC kinds
        lines.append(f"// {name}Service serves {name}.\nservice {name}Service {{\n")
        lines.append(f"  // Get one.\n  rpc Get{name}(Get{name}Request) returns (Get{name}Response);\n")
        lines.append(f"  // Stream many.\n  rpc List{name}(List{name}Request) returns (stream List{name}Response);\n")
        lines.append(
            f"  // Upload many.\n  rpc Upload{name}(stream Upload{name}Request) returns (Upload{name}Response);\n"
        )
        lines.append(
            f"  // Sync both ways.\n  rpc Sync{name}(stream Sync{name}Request) returns (stream Sync{name}Response);\n}}\n"
        )
    return "".join(lines)


def write_tree(root: Path, files: int, files_per_pkg: int = 20) -> list[str]:
    """Write `files` protos under root/protos; return their paths relative to the module root."""
    names = []
    for n in range(files):
        pkg, idx = divmod(n, files_per_pkg)
        rel = f"bench/p{pkg:03d}/v1/f{idx:03d}.proto"
        path = root / "protos" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_file(pkg, idx, files_per_pkg))
        names.append(rel)
    return names


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    print(len(write_tree(args.root, args.files)), "protos written")
