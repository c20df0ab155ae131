"""protokit's release and the names it is installed by.

Two distributions share one version: the toolchain (the `protokit` command) and the runtime that generated
code imports, which a deployed service installs alone. ("protokit" on the package index is an unrelated
project, so neither is called that.)
"""

__version__ = "0.1.0"

TOOLCHAIN = "protokit-cli"
RUNTIME = "protokit-runtime"


def runtime_requirement() -> str:
    """What a service lists in its dependencies: any runtime of this minor release, which generated code
    of this release runs on."""
    major, minor, _ = __version__.split(".")
    return f"{RUNTIME}>={__version__},<{major}.{int(minor) + 1}"


def toolchain_requirement() -> str:
    """What a service lists in its dev extra: exactly this toolchain, since `gen --check` compares bytes
    that another release may write differently."""
    return f"{TOOLCHAIN}=={__version__}"
