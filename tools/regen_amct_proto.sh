#!/bin/sh
# Regenerate src/quantspec/dialects/amct_pb2.py (and its type stub amct_pb2.pyi) from
# src/quantspec/dialects/amct.proto.
# Needs grpcio-tools (dev only); the generated module needs only the protobuf runtime.
set -eu
cd "$(dirname "$0")/.."

python -m grpc_tools.protoc -Isrc --python_out=src --pyi_out=src src/quantspec/dialects/amct.proto

# protoc >= 26 emits a gencode/runtime version check that rejects runtimes older than the
# generator; the module only uses descriptor_pool + builder (protobuf >= 3.20), so drop the check
# to keep it importable with every protobuf the project supports (>= 4.21).
python - src/quantspec/dialects/amct_pb2.py <<'PY'
import re
import sys

path = sys.argv[1]
text = open(path, encoding="utf-8").read()
text = text.replace("from google.protobuf import runtime_version as _runtime_version\n", "")
text = re.sub(r"_runtime_version\.ValidateProtobufRuntimeVersion\(.*?\n\)\n", "", text,
              flags=re.S)
open(path, "w", encoding="utf-8").write(text)

# The stub is generated too: keep the linter off it (pyproject excludes only *_pb2.py).
stub = path + "i"
text = open(stub, encoding="utf-8").read()
if not text.startswith("# ruff: noqa"):
    open(stub, "w", encoding="utf-8").write("# ruff: noqa\n" + text)
PY
echo "wrote src/quantspec/dialects/amct_pb2.py and amct_pb2.pyi"
