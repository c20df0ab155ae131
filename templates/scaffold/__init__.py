"""Templates of `protokit new service` and `protokit new proto` (package data: *.j2)."""
