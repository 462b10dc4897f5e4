"""P5 canonize: our JSONata engines vs npm ``jsonata`` on Node, same transform, same documents.

The documents are the sandbox generator's Gmail messages (``users.messages.get``,
format=full), the transform is the shipped ``email/gmail_to_jmap_lite``. Both sides hold
the parsed documents in memory and time evaluation only (no process start, no file
reading), two passes each, the faster one counted; the outputs of the default engine and
of Node are compared document by document. npm ``jsonata`` (the original lorchestra's
engine) and ``turndown`` (its ``htmlToMarkdown``) are installed by npm into a temporary
folder; Node comes from Debian's package when it is missing. When either cannot be had,
the figure says so instead of failing the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from harness import ROOT
from report import check, figure

TRANSFORM = ROOT / "jobs/transforms/email/gmail_to_jmap_lite/1.0.0/spec.jsonata"
NPM_PACKAGES = ["jsonata@2", "turndown@7"]

# The five extension functions of lorchestra_dagster/callables/jsonata_engine.py in
# JavaScript, so Node does the same work per document as our engines.
NODE_SCRIPT = r"""
const fs = require("fs");
const jsonata = require("jsonata");
const TurndownService = require("turndown");
const [source, docsPath, outPath] = process.argv.slice(2);
const td = new TurndownService({ headingStyle: "atx", bulletListMarker: "-" });
td.remove(["script", "style"]);
const ENT = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };
const ext = {
  base64urlDecode: (s) => (s == null ? null : Buffer.from(String(s), "base64url").toString("utf8")),
  unescapeHtml: (s) => s == null ? null : String(s).replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e) =>
    e[0] === "#" ? String.fromCodePoint(e[1].toLowerCase() === "x" ? parseInt(e.slice(2), 16)
      : parseInt(e.slice(1), 10)) : (ENT[e.toLowerCase()] ?? m)),
  parseAddresses: (h) => {
    if (h == null) return [];
    const out = [];
    for (const part of String(h).match(/("[^"]*"|[^,])+/g) || []) {
      const m = part.match(/^\s*"?([^"<]*?)"?\s*<([^>]+)>\s*$/);
      if (m) out.push({ name: m[1] || null, email: m[2] });
      else if (part.trim()) out.push({ name: null, email: part.trim() });
    }
    return out;
  },
  isoUtc: (v) => (v == null || v === "" ? null : new Date(String(v).trim()).toISOString()),
  htmlToMarkdown: (h) => h == null ? null : td.turndown(String(h)).split("\n")
    .map((l) => l.trimEnd()).join("\n").replace(/\n{3,}/g, "\n\n").trim(),
};
(async () => {
  const docs = JSON.parse(fs.readFileSync(docsPath, "utf8"));
  const expr = jsonata(source);
  for (const [name, fn] of Object.entries(ext)) expr.registerFunction(name, fn);
  const passes = [];
  let outs;
  for (let pass = 0; pass < 2; pass++) {
    outs = [];
    const t0 = process.hrtime.bigint();
    for (const d of docs) outs.push(await expr.evaluate(d));
    passes.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  fs.writeFileSync(outPath, JSON.stringify(outs));
  console.log(JSON.stringify({ passes_s: passes, node: process.version,
    jsonata: require("jsonata/package.json").version }));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def gmail_documents(n: int) -> list[dict[str, Any]]:
    """``n`` generated Gmail messages from the sandbox generator (seed 7), both accounts."""
    from lorchestra_dagster.sources.sandbox.generate import generate

    def messages(clients: int) -> list[dict[str, Any]]:
        practice = generate(clients, 7, catalog_dir=ROOT / "jobs")
        return [m for sid, objs in practice.streams.items() if "gmail" in sid for m in objs]

    docs = messages(100)
    if len(docs) < n:
        docs = messages(math.ceil(100 * n / max(1, len(docs)) * 1.1))
    return docs[:n]


def _time_engine(source: str, engine: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    from lorchestra_dagster.callables.jsonata_engine import compile_expression

    expr = compile_expression(source, engine)
    passes, outs = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        outs = [expr.evaluate(d) for d in docs]
        passes.append(time.perf_counter() - t0)
    return {
        "docs": len(docs),
        "passes_s": [round(p, 3) for p in passes],
        "docs_per_s": round(len(docs) / min(passes)),
        "outputs": outs,
    }


def _ensure_node() -> str | None:
    """Path of ``node`` and ``npm``'s presence, installing Debian's packages when missing;
    a reason string when they cannot be had."""
    if shutil.which("node") and shutil.which("npm"):
        return None
    if os.geteuid() != 0:
        return "node/npm missing and not root: apt-get install -y nodejs npm"
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "nodejs", "npm"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return f"apt-get could not install nodejs/npm: {proc.stderr.strip()[-300:]}"
    return None if shutil.which("node") and shutil.which("npm") else "nodejs installed no node"


def _npm_install(folder: Path) -> str | None:
    """Install the npm packages into ``folder``; a reason string when npm cannot."""
    cmd = ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        proc = subprocess.run([*cmd, *NPM_PACKAGES], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "npm registry unreachable: npm install timed out after 300 s"
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip())[-300:]
        return f"npm registry unreachable or refused: {said}"
    return None


def _node_run(folder: Path, source: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    (folder / "bench.js").write_text(NODE_SCRIPT)
    (folder / "docs.json").write_text(json.dumps(docs))
    out = folder / "out.json"
    proc = subprocess.run(
        ["node", str(folder / "bench.js"), source, str(folder / "docs.json"), str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=folder,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"node bench failed: {proc.stderr.strip()[-2000:]}")
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    stats["docs_per_s"] = round(len(docs) / min(stats["passes_s"]))
    stats["outputs"] = json.loads(out.read_text())
    return stats


def agreement(ours: list[Any], theirs: list[Any]) -> dict[str, Any]:
    """Documents whose outputs are identical, and which top-level fields differ (names only,
    never values)."""
    same, fields = 0, {}
    for a, b in zip(ours, theirs, strict=True):
        if a == b:
            same += 1
            continue
        for key in sorted(set(a or {}) | set(b or {})):
            if (a or {}).get(key) != (b or {}).get(key):
                fields[key] = fields.get(key, 0) + 1
    return {"identical": same, "of": len(ours), "differing_fields": fields}


def p5_canonize(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    n = args.p5_docs
    source = TRANSFORM.read_text()
    docs = gmail_documents(n)
    ours = _time_engine(source, "jsonatapy", docs)
    python_docs = docs[: min(n, args.p5_python_docs)]
    reference = _time_engine(source, "jsonata-python", python_docs)
    reference.pop("outputs")
    measured: dict[str, Any] = {
        "docs": len(docs),
        "jsonatapy": {k: v for k, v in ours.items() if k != "outputs"},
        "jsonata_python": reference,
    }
    folder = tmp / "p5-node"
    folder.mkdir()
    reason = _ensure_node() or _npm_install(folder)
    ratio = None
    if reason is None:
        node = _node_run(folder, source, docs)
        measured["node_jsonata"] = {k: v for k, v in node.items() if k != "outputs"}
        measured["output_agreement"] = agreement(ours["outputs"], node["outputs"])
        ratio = round(ours["docs_per_s"] / node["docs_per_s"], 3)
    measured["unavailable"] = reason
    why = (
        f"the baseline could not be measured: {reason}"
        if reason
        else "jsonatapy evaluates from JSON text: each document pays json.dumps and "
        "json.loads around the Rust call, and each extension call crosses into Python. "
        "Closing it: evaluate a page of documents per call (one JSON array in, one out) and "
        "move the hot extensions (base64urlDecode, parseAddresses, isoUtc) to native code."
    )
    return figure(
        "P5",
        "canonize",
        [check("jsonatapy docs/s / npm jsonata on Node docs/s", ratio, ">=", 1.0)],
        baseline=f"npm jsonata ({', '.join(NPM_PACKAGES)}) on Node, same documents and "
        "transform, evaluation only, best of two passes on both sides",
        size=f"{len(docs):,} Gmail messages (jsonata-python on the first {len(python_docs):,})",
        command=f"make bench ONLY=P5 P5_DOCS={n}",
        measured=measured,
        why_missed=why,
    )
