"""A study as one archive an artifact evaluator can rerun: `tune pack` / `tune unpack`.

The archive (`STUDY.tune.tar.gz`) is a small library root plus the campaign::

    STUDY.tune/tune-artifact.json       manifest: every file with its SHA-256, what was rewritten
    STUDY.tune/search_spaces/STUDY.toml the study file (program paths made relative to it)
    STUDY.tune/search_spaces/knobs/...  included knob files, at their paths relative to the study
    STUDY.tune/programs/..., targets/...  the program's sources, template and headers
    STUDY.tune/targets/TARGET.toml      the target file(s); objectives/NAME.toml
    STUDY.tune/results/STUDY/journal.log  the campaign (any storage is copied into a journal)
    STUDY.tune/results/STUDY/references.json (+ references/) the reference outputs

Unpacked, the folder is a library: `tune` run inside it finds the study, target and
objectives there before the built-in ones, and the study file names its program files
relative to itself ("./../programs/x.c"), so the archived sources are the ones built even by
a `tune` whose built-in library differs. The rewrite is recorded in the manifest, with the
original study file's hash.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

from tuner import library, provenance
from tuner.errors import BadInput, RunFailure

SCHEMA = "tune.artifact/1"
MANIFEST = "tune-artifact.json"


def _library_relative(path: Path, spec: Any) -> str:
    """Where a file goes in the archive: relative to the library root it came from, else to
    the study file's folder (under search_spaces/)."""
    path = path.resolve()
    study_dir = Path(spec.file).resolve().parent
    roots = [r.resolve() for r in library.roots()]
    for root in sorted(roots, key=lambda r: -len(str(r))):
        if path.is_relative_to(root) and root != study_dir:
            rel = path.relative_to(root)
            if rel.parts and rel.parts[0] in ("programs", "targets", "search_spaces", "objectives"):
                return str(rel)
    if path.is_relative_to(study_dir):
        return str(Path("search_spaces") / path.relative_to(study_dir))
    return str(Path("programs") / "external" / path.name)


def collect(spec: Any, target_names: list[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """(archive path -> file on disk, study-file string rewrites) for a study."""
    files: dict[str, Path] = {}
    study_dir = Path(spec.file).resolve().parent
    rewrites: dict[str, str] = {}
    prog = spec.program
    for src in [*prog.sources, *([prog.template] if prog.template else [])]:
        rel = _library_relative(src, spec)
        files[rel] = src
        original = _literal_for(src, spec)
        if original is not None:
            rewrites[original] = "./" + os.path.relpath(rel, "search_spaces")
    for d in prog.include_dirs:
        for h in sorted(Path(d).glob("*.h")):
            files.setdefault(_library_relative(h, spec), h)
    for knob in spec.space.knobs.values():
        f = Path(getattr(knob, "file", spec.file)).resolve()
        if f != Path(spec.file).resolve():
            rel = os.path.relpath(f, study_dir)
            files[str(Path("search_spaces") / rel)] = f
    files[f"search_spaces/{spec.name}.toml"] = Path(spec.file)
    for name in target_names:
        files[f"targets/{name}.toml"] = library.find("target", name)
    for o in spec.objectives:
        files[f"objectives/{o.name}.toml"] = library.find("objective", o.name)
    return files, rewrites


def _literal_for(src: Path, spec: Any) -> str | None:
    """The string the study file uses for `src` (a sources/template entry), if found."""
    text = Path(spec.file).read_text()
    study_dir = Path(spec.file).resolve().parent
    for base in (library.programs_dir(), study_dir):
        rel = os.path.relpath(src.resolve(), base.resolve())
        for lit in (rel, "./" + rel):
            if f'"{lit}"' in text or f"'{lit}'" in text:
                return lit
    return None


def pack(spec: Any, study: Any, results: Path, out: Path, target_names: list[str],
         storage_url: str | None = None) -> dict[str, Any]:
    """Write the archive; returns the manifest."""
    import optuna

    files, rewrites = collect(spec, target_names)
    root = f"{spec.name}.tune"
    entries: dict[str, bytes] = {}
    for rel, path in sorted(files.items()):
        data = Path(path).read_bytes()
        if rel == f"search_spaces/{spec.name}.toml":
            text = data.decode()
            for old, new in rewrites.items():
                text = text.replace(f'"{old}"', f'"{new}"').replace(f"'{old}'", f"'{new}'")
            data = text.encode()
        entries[rel] = data
    journal = results / "journal.log"
    if storage_url is None:
        if not journal.exists():
            raise BadInput(f"no journal at {journal}", None, "--results")
        entries[f"results/{spec.name}/journal.log"] = journal.read_bytes()
    else:   # another storage (SQLite, PostgreSQL, ...): copy the study into a journal
        tmp = out.with_name(out.name + ".journal.tmp")
        tmp.unlink(missing_ok=True)
        try:
            optuna.copy_study(from_study_name=study.study_name, from_storage=study._storage,
                              to_storage=_journal(tmp))
            entries[f"results/{spec.name}/journal.log"] = tmp.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
    refs = results / "references.json"
    if refs.exists():
        doc = json.loads(refs.read_text() or "{}")
        for key, entry in doc.items():
            if isinstance(entry, dict) and entry.get("output") and Path(entry["output"]).exists():
                rel = f"results/{spec.name}/references/{Path(entry['output']).name}"
                entries[rel] = Path(entry["output"]).read_bytes()
                entry["output"] = rel[len(f"results/{spec.name}/"):]
        entries[f"results/{spec.name}/references.json"] = json.dumps(doc, indent=1).encode()
    sw = provenance.software()
    manifest = {"schema": SCHEMA, "study": spec.name, "target": spec.target, "targets": target_names,
                "objectives": [o.name for o in spec.objectives],
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tune": sw["tune"],
                "study_file_sha256": provenance.sha256_file(spec.file), "rewrites": rewrites,
                "files": {rel: _sha(data) for rel, data in entries.items()}}
    entries[MANIFEST] = json.dumps(manifest, indent=1).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    with tarfile.open(part, "w:gz") as tar:
        for rel, data in entries.items():
            info = tarfile.TarInfo(f"{root}/{rel}")
            info.size = len(data)
            info.mtime = int(time.time())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    part.replace(out)
    return manifest


def _journal(path: Path) -> Any:
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    return JournalStorage(JournalFileBackend(str(path)))


def _sha(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


def unpack(archive: Path, into: Path) -> dict[str, Any]:
    """Extract an archive into `into` (which must not hold one already) and check every file
    against the manifest. Returns the manifest."""
    if not archive.is_file():
        raise BadInput("no such archive", archive)
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise BadInput(f"not a tune archive: {str(e).splitlines()[0].rstrip(':')}", archive) from None
    with tar:
        members = tar.getmembers()
        roots = {m.name.split("/", 1)[0] for m in members}
        if len(roots) != 1:
            raise BadInput("not a tune archive: expected one top-level folder", archive)
        (top,) = roots
        try:
            manifest = json.loads(tar.extractfile(f"{top}/{MANIFEST}").read())   # type: ignore[union-attr]
        except (KeyError, AttributeError, ValueError):
            raise BadInput(f"not a tune archive: no {MANIFEST}", archive) from None
        if manifest.get("schema") != SCHEMA:
            raise BadInput(f"unsupported archive schema {manifest.get('schema')!r} (this tune reads {SCHEMA})",
                           archive, "schema")
        if (into / MANIFEST).exists():
            raise BadInput(f"{into} already holds an unpacked study; choose another --into", archive)
        into.mkdir(parents=True, exist_ok=True)
        for m in members:
            rel = m.name.split("/", 1)[1] if "/" in m.name else ""
            if not rel or not m.isfile():
                continue
            dest = (into / rel).resolve()
            if not dest.is_relative_to(into.resolve()):
                raise BadInput(f"archive member escapes the folder: {m.name}", archive)
            data = tar.extractfile(m).read()        # type: ignore[union-attr]
            want = manifest["files"].get(rel)
            if rel != MANIFEST and want != _sha(data):
                raise RunFailure(f"{archive}: {rel} does not match its hash in the manifest (damaged archive)")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    refs = into / "results" / manifest["study"] / "references.json"
    if refs.exists():    # reference outputs were stored relative to the results folder
        doc = json.loads(refs.read_text() or "{}")
        for entry in doc.values():
            if isinstance(entry, dict) and entry.get("output") and not os.path.isabs(entry["output"]):
                entry["output"] = str((refs.parent / entry["output"]).resolve())
        refs.write_text(json.dumps(doc, indent=1))
    return manifest
