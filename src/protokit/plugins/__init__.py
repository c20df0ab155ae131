"""Code generator plugins protokit runs: each is a function CodeGeneratorRequest -> CodeGeneratorResponse,
or a generator built into grpcio-tools' protoc that joins the compile call."""
