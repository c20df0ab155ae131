"""protokit.runtime: the small library generated servicers and clients import (no tooling imports)."""
