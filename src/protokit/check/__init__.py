"""Checking protos: buf's lint and breaking rules run on protokit's images, plus protokit's own rules (one registry).

Kept empty: `protokit lint`'s warm path imports protokit.check.lintanswer and must not load the rest."""
