"""Write magspect's metadata into an ONNX file, and keep a ``SHA256SUMS`` beside it true.

Reading needs only onnxruntime (``Manifest.from_onnx``); writing needs the ``onnx`` package (the
``train`` extra): it is a model-building step (export, sizing calibration, verifier training).
"""

from __future__ import annotations

from pathlib import Path


def embed_metadata(path: str | Path, key: str, value: str) -> Path:
    """Set the ONNX metadata entry ``key`` to ``value`` in ``path`` (replacing one already there)."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError("writing ONNX metadata needs the onnx package: pip install 'magspect[train]'") from None
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != key]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value
    proto.producer_name = "magspect"
    onnx.save(proto, str(path), save_as_external_data=False)
    return Path(path)


def record_checksum(path: str | Path) -> bool:
    """Update ``path``'s line in the ``SHA256SUMS`` beside it, if that file exists and lists it
    (the runtime refuses a file whose checksum does not match its line). True if updated."""
    from magspect.inspect.backend import sha256_file

    path = Path(path)
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return False
    lines = sums.read_text().splitlines()
    found = False
    for i, line in enumerate(lines):
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            lines[i] = f"{sha256_file(path)}  {parts[1]}"
            found = True
    if found:
        sums.write_text("\n".join(lines) + "\n")
    return found


def copy_with_metadata(
    src: str | Path, out: str | Path, key: str, manifest_json: str, sidecar_json: str | None = None
) -> Path:
    """Write ``out``: ``src`` with its metadata entry ``key`` set to ``manifest_json`` (weights
    unchanged), ``sidecar_json`` (default: the same) beside it as ``<name>.manifest.json``, and its
    line in a ``SHA256SUMS`` beside it updated. A file whose metadata could not be written is removed."""
    import shutil

    from magspect.models.manifest import manifest_path_for

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, out)
    try:
        embed_metadata(out, key, manifest_json)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    manifest_path_for(out).write_text((sidecar_json or manifest_json) + "\n", encoding="utf-8")
    record_checksum(out)
    return out
