"""Library-level tests: the pieces of the gen pipeline, without the CLI."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from conftest import BIN
from protokit import cache, codegen, config, gen, outtree
from protokit.errors import ConfigError, ProtokitError
from protokit.gen import out_roots
from protokit.plugins import registry
from protokit.plugins.external import run_plugin
from protokit.sources import load_sources


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def mini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.Project:
    monkeypatch.setenv("PROTOKIT_CACHE_DIR", str(tmp_path / "cache"))
    write(
        tmp_path, "buf.yaml", "version: v2\nmodules:\n  - path: protos\ndeps:\n  - buf.build/bufbuild/protovalidate\n"
    )
    write(tmp_path, "protos/a/v1/base.proto", 'syntax = "proto3";\npackage a.v1;\nmessage Base { string id = 1; }\n')
    write(
        tmp_path,
        "protos/a/v1/reexport.proto",
        'syntax = "proto3";\npackage a.v1;\nimport public "a/v1/base.proto";\n',
    )
    write(
        tmp_path,
        "protos/b/v1/use.proto",
        """\
        syntax = "proto3";
        package b.v1;
        // import "commented/out.proto"; over-approximation is harmless
        import "a/v1/reexport.proto";
        import
          "google/protobuf/timestamp.proto";
        message Use { a.v1.Base base = 1; }
        """,
    )
    return config.load_project(tmp_path)


def test_sources_scan_imports_and_public_closure(mini: config.Project) -> None:
    sources = load_sources(mini)
    assert list(sources.files) == ["a/v1/base.proto", "a/v1/reexport.proto", "b/v1/use.proto"]
    use = sources.files["b/v1/use.proto"]
    assert use.display == "protos/b/v1/use.proto"
    assert "google/protobuf/timestamp.proto" in use.imports  # import split over two lines
    assert sources.files["a/v1/reexport.proto"].public_imports == ("a/v1/base.proto",)
    # use.proto sees base.proto through reexport's public import: base is part of its cache key.
    assert "a/v1/base.proto" in sources.dependency_closure("b/v1/use.proto")


def test_sources_scan_keywords_only_where_they_start_a_word_or_line(tmp_path: Path) -> None:
    write(tmp_path, "buf.yaml", "version: v2\nmodules:\n  - path: protos\n")
    write(
        tmp_path,
        "protos/x/v1/svc.proto",
        """\
        syntax = "proto3";
        package x.v1;
        import weak 'x/v1/single.proto';
        import public "x/v1/pub.proto";reimport "x/v1/not.proto";
        // a service Commented { in a comment
        message M { string service_name = 1; }
          \tservice Real {}
        """,
    )
    write(tmp_path, "protos/x/v1/none.proto", 'syntax = "proto3";\npackage x.v1; message Service { }\nmy_service X {\n')
    files = load_sources(config.load_project(tmp_path)).files
    svc = files["x/v1/svc.proto"]
    assert svc.imports == ("x/v1/pub.proto", "x/v1/single.proto")
    assert svc.public_imports == ("x/v1/pub.proto",)
    assert svc.package == "x.v1" and svc.has_service
    assert not files["x/v1/none.proto"].has_service


@pytest.mark.parametrize("module", [".", "protos"])
def test_sources_skip_excluded_and_hidden_directories(tmp_path: Path, module: str) -> None:
    prefix = "" if module == "." else "protos/"
    write(tmp_path, "buf.yaml", f"version: v2\nmodules:\n  - path: {module}\n    excludes: [{prefix}vendor]\n")
    for rel in ("a/v1/a.proto", "a/v1/deep/b.proto", "vendor/v.proto", ".cache/c.proto", "a/.h/d.proto", "a/.e.proto"):
        write(tmp_path, prefix + rel, 'syntax = "proto3";\n')
    write(tmp_path, prefix + "vendorized/k.proto", 'syntax = "proto3";\n')  # only a name prefix of vendor
    files = load_sources(config.load_project(tmp_path)).files
    assert list(files) == ["a/v1/a.proto", "a/v1/deep/b.proto", "vendorized/k.proto"]
    assert files["a/v1/deep/b.proto"].display == prefix + "a/v1/deep/b.proto"


def test_split_point_weighs_what_each_part_loads() -> None:
    names = [f"f{i:03d}.proto" for i in range(100)]
    assert codegen.split_point(names, lambda name: ()) == 50
    # Each file imports its predecessor: the second part loads every file before it, so it gets fewer.
    chain = {n: (names[i - 1],) if i else () for i, n in enumerate(names)}
    cut = codegen.split_point(names, lambda name: chain[name])
    assert 52 < cut < 65
    # Imports the other way round: the first part is the heavy one.
    backwards = {n: (names[i + 1],) if i < 99 else () for i, n in enumerate(names)}
    assert abs((100 - cut) - codegen.split_point(names, lambda name: backwards[name])) <= 1


def test_gen_builds_the_validate_set_only_for_projects_that_import_it(mini: config.Project) -> None:
    write(mini.root, "buf.gen.yaml", "version: v2\nplugins:\n  - protoc_builtin: python\n    out: gen\n")
    gen.generate(mini, config.load_gen_config(mini))
    assert (mini.root / "gen" / "b" / "v1" / "use_pb2.py").is_file()
    assert not list(cache.cache_dir().glob("validate-*"))
    assert gc.isenabled()  # paused while generating only

    write(
        mini.root,
        "protos/c/v1/checked.proto",
        'syntax = "proto3";\npackage c.v1;\nimport "buf/validate/validate.proto";\n',
    )
    gen.generate(mini, config.load_gen_config(mini))
    assert (mini.root / "gen" / "c" / "v1" / "checked_pb2.py").is_file()
    assert list(cache.cache_dir().glob("validate-*"))


def test_same_relative_path_in_two_modules_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "buf.yaml", "version: v2\nmodules:\n  - path: one\n  - path: two\n")
    write(tmp_path, "one/x.proto", 'syntax = "proto3";\n')
    write(tmp_path, "two/x.proto", 'syntax = "proto3";\n')
    with pytest.raises(ProtokitError, match=r"both define x\.proto"):
        load_sources(config.load_project(tmp_path))


def test_cache_pack_round_trip_and_store(tmp_path: Path) -> None:
    files = [("a/b_pb2.py", b"x = 1\n"), ("a/b_pb2.pyi", b""), ("\u00e9/c.py", bytes(range(256)))]
    assert cache.unpack(cache.pack(files)) == files
    assert cache.paths(cache.pack(files)) == [path for path, _ in files]
    assert cache.unpack(cache.pack([])) == []
    store = cache.Store(tmp_path)
    store.put_many("gen", {"k1": b"one", "k2": b"two"})
    assert store.get_many("gen", ["k1", "k2", "missing"]) == {"k1": b"one", "k2": b"two"}
    assert store.get("other-kind", "k1") is None


def test_cache_files_decompress_an_entry_only_when_one_of_its_files_is_read() -> None:
    files = cache.Files()
    files.add("g/new.py", b"fresh")
    good = cache.pack([("g/a.py", b"A"), ("g/b.py", b"B")])
    broken = cache.pack([("g/c.py", b"C")])
    broken = broken[: 4 + int.from_bytes(broken[:4], "big")] + b"not zlib"  # the index alone is intact
    assert files.add_packed(good) == ["g/a.py", "g/b.py"]
    assert files.add_packed(broken) == ["g/c.py"]
    assert list(files) == ["g/new.py", "g/a.py", "g/b.py", "g/c.py"] and "g/c.py" in files and len(files) == 4
    assert (files["g/new.py"], files["g/b.py"], files["g/a.py"]) == (b"fresh", b"B", b"A")
    with pytest.raises(zlib.error):
        files["g/c.py"]


def test_out_roots_collapse_nested_directories() -> None:
    def plugin(out: str) -> registry.Plugin:
        return registry.Plugin(config.PluginSpec(kind="protoc_builtin", name="python", argv=(), out=out))

    assert out_roots([plugin("generated"), plugin("generated/models"), plugin("other")]) == ("generated", "other")


def test_generated_marker() -> None:
    assert outtree.is_generated(b"# Generated by the protocol buffer compiler.  DO NOT EDIT!\n")
    assert outtree.is_generated(b'"""\n@generated by mypy-protobuf.  Do not edit manually!\n"""')
    assert not outtree.is_generated(b"")  # an empty file may be a user's py.typed
    assert not outtree.is_generated(b"def handwritten() -> None: ...\n")


def test_repo_gen_config_resolves_every_plugin_in_process() -> None:
    repo = Path(__file__).resolve().parent.parent
    project = config.load_project(repo)
    gen = config.load_gen_config(project)
    plugins = [registry.resolve(spec, repo) for spec in gen.plugins]
    assert [p.spec.name for p in plugins] == [
        "python",
        "protoc-gen-grpc_python",
        "protoc-gen-mypy",
        "protoc-gen-mypy_grpc",
        "protoc-gen-protokit",
    ]
    assert all(p.per_file and not p.executable for p in plugins)
    assert gen.inputs == ("protos",)


def test_input_must_be_a_module(tmp_path: Path) -> None:
    write(tmp_path, "buf.yaml", "version: v2\nmodules:\n  - path: protos\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "protos").mkdir()
    write(
        tmp_path,
        "buf.gen.yaml",
        "version: v2\nplugins:\n  - protoc_builtin: python\n    out: gen\ninputs:\n  - directory: other\n",
    )
    with pytest.raises(ConfigError) as err:
        config.load_gen_config(config.load_project(tmp_path))
    assert str(err.value.where) == "buf.gen.yaml:6:5"
    assert "not a module" in err.value.message


def test_grpc_python_console_plugin_matches_protoc_builtin(tmp_path: Path, mini: config.Project) -> None:
    """protoc-gen-grpc_python (the console script buf generate runs) == grpc_tools' built-in generator."""
    write(
        mini.root,
        "protos/s/v1/svc.proto",
        """\
        syntax = "proto3";
        package s.v1;
        message Req {}
        message Resp {}
        service Svc {
          rpc Unary(Req) returns (Resp);
          rpc Bidi(stream Req) returns (stream Resp);
        }
        """,
    )
    builtin, plugin = tmp_path / "builtin", tmp_path / "plugin"
    builtin.mkdir()
    plugin.mkdir()
    common = [sys.executable, "-m", "grpc_tools.protoc", f"-I{mini.root / 'protos'}", "s/v1/svc.proto"]
    subprocess.run([*common, f"--grpc_python_out={builtin}"], check=True)
    subprocess.run(
        [
            *common,
            f"--plugin=protoc-gen-grpcx={BIN / 'protoc-gen-grpc_python'}",
            f"--grpcx_out={plugin}",
        ],
        check=True,
    )
    expected = (builtin / "s/v1/svc_pb2_grpc.py").read_bytes()
    assert b"def Bidi" in expected
    assert (plugin / "s/v1/svc_pb2_grpc.py").read_bytes() == expected


def _script(tmp_path: Path, body: str) -> config.PluginSpec:
    path = tmp_path / "protoc-gen-fake"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return config.PluginSpec(kind="local", name=str(path), argv=(str(path),), out="gen")


def test_external_plugin_failures_are_reported(tmp_path: Path, mini: config.Project) -> None:
    from protokit import compile as compile_

    image = compile_.build_descriptor_set(mini, cache.cache_dir(), ["a/v1/base.proto"], ("protos",))
    crashing = registry.resolve(_script(tmp_path, "import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n"), mini.root)
    with pytest.raises(ProtokitError, match="exited 3") as err:
        run_plugin(crashing, image, ["a/v1/base.proto"])
    assert err.value.lines == ["boom"]

    refusing = registry.resolve(
        _script(
            tmp_path,
            """\
            import sys
            from google.protobuf.compiler import plugin_pb2
            sys.stdin.buffer.read()
            sys.stdout.buffer.write(plugin_pb2.CodeGeneratorResponse(error="bad option").SerializeToString())
            """,
        ),
        mini.root,
    )
    with pytest.raises(ProtokitError, match="bad option"):
        run_plugin(refusing, image, ["a/v1/base.proto"])


def test_external_plugin_runs_with_venv_bin_on_path(tmp_path: Path, mini: config.Project) -> None:
    from protokit import compile as compile_

    image = compile_.build_descriptor_set(mini, cache.cache_dir(), ["a/v1/base.proto"], ("protos",))
    echo_path = registry.resolve(
        _script(
            tmp_path,
            """\
            import os, sys
            from google.protobuf.compiler import plugin_pb2
            req = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
            resp = plugin_pb2.CodeGeneratorResponse()
            resp.file.add(name="path.txt", content=os.environ["PATH"].split(os.pathsep)[0])
            resp.file.add(name="files.txt", content=",".join(req.file_to_generate))
            resp.file.add(name="given.txt", content=",".join(f.name for f in req.proto_file))
            sys.stdout.buffer.write(resp.SerializeToString())
            """,
        ),
        mini.root,
    )
    out = dict(run_plugin(echo_path, image, ["a/v1/base.proto"]))
    assert out["path.txt"].decode() == os.path.dirname(sys.executable)
    assert out["files.txt"] == b"a/v1/base.proto"
    # As protoc and buf send it: the files to generate and their imports, in dependency order; not the
    # whole image (b/v1/use.proto and its imports are in it).
    whole = compile_.build_descriptor_set(mini, cache.cache_dir(), ["b/v1/use.proto"], ("protos",))
    out = dict(run_plugin(echo_path, whole, ["a/v1/reexport.proto"]))
    assert out["given.txt"] == b"a/v1/base.proto,a/v1/reexport.proto"


def test_implementation_files_are_named_after_the_proto_and_qualified_on_clashes(tmp_path: Path) -> None:
    from protokit.implementations import planned

    service = 'syntax = "proto3";\npackage {pkg};\nmessage M {{}}\nservice S {{\n  rpc Get(M) returns (M);\n}}\n'
    write(tmp_path, "buf.yaml", "version: v2\nmodules:\n  - path: protos\n")
    write(tmp_path, "protos/a/v1/svc.proto", service.format(pkg="a.v1"))
    write(tmp_path, "protos/b/v1/svc.proto", service.format(pkg="b.v1"))
    write(tmp_path, "protos/c/v1/user-api.proto", service.format(pkg="c.v1"))
    write(tmp_path, "protos/c/v1/types.proto", 'syntax = "proto3";\npackage c.v1;\nmessage T {}\n')
    plan = planned(tmp_path / "impl", load_sources(config.load_project(tmp_path)))
    assert {p.name: name for p, name in plan.items()} == {
        "a_v1_svc.py": "a/v1/svc.proto",
        "b_v1_svc.py": "b/v1/svc.proto",
        "user_api.py": "c/v1/user-api.proto",
    }
