"""protoc-gen-protokit's generator: descriptors -> view model (model.py) -> Jinja templates (render.py)."""

from protokit.servicegen.model import FileModel, MethodModel, ServiceGenError, ServiceModel, build
from protokit.servicegen.render import render_file, render_implementation

__all__ = [
    "FileModel",
    "MethodModel",
    "ServiceGenError",
    "ServiceModel",
    "build",
    "render_file",
    "render_implementation",
]
