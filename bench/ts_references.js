// The independent reference for bench/refs_accuracy.py on TypeScript: the TypeScript compiler's
// language service (`findReferences`) over the same files the knowledge base indexed.
//
//   node bench/ts_references.js QUERIES.json   (TS_PATH: the typescript package's folder)
//
// QUERIES.json: {"root": folder, "files": [relative paths], "queries": [{"path", "line", "name"}]}.
// Prints, for each query, the references' files and lines (definitions left out), as JSON.
"use strict";
const fs = require("fs");
const path = require("path");
const ts = require(process.env.TS_PATH || "typescript");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const files = spec.files.map((f) => path.join(spec.root, f));
const options = {
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
  strict: true, skipLibCheck: true, noEmit: true, allowImportingTsExtensions: true, jsx: ts.JsxEmit.Preserve,
};
const host = {
  getScriptFileNames: () => files,
  getScriptVersion: () => "1",
  getScriptSnapshot: (f) => (fs.existsSync(f) ? ts.ScriptSnapshot.fromString(fs.readFileSync(f, "utf8")) : undefined),
  getCurrentDirectory: () => spec.root,
  getCompilationSettings: () => options,
  getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
  fileExists: ts.sys.fileExists, readFile: ts.sys.readFile, readDirectory: ts.sys.readDirectory,
  directoryExists: ts.sys.directoryExists, getDirectories: ts.sys.getDirectories,
};
const service = ts.createLanguageService(host, ts.createDocumentRegistry());
const program = service.getProgram();

const out = [];
for (const q of spec.queries) {
  const file = path.join(spec.root, q.path);
  const source = program.getSourceFile(file);
  const lineText = source.text.split("\n")[q.line - 1] || "";
  const match = new RegExp(`(?<![\\w$])${q.name.replace(/[$]/g, "\\$")}(?![\\w$])`).exec(lineText);
  if (!match) {
    out.push({ ...q, error: "name not on its line", refs: [] });
    continue;
  }
  const pos = source.getPositionOfLineAndCharacter(q.line - 1, match.index);
  const refs = [];
  for (const group of service.findReferences(file, pos) || []) {
    for (const r of group.references) {
      if (r.isDefinition) continue;
      const sf = program.getSourceFile(r.fileName);
      if (!sf || !r.fileName.startsWith(spec.root)) continue;
      const { line } = sf.getLineAndCharacterOfPosition(r.textSpan.start);
      refs.push([path.relative(spec.root, r.fileName), line + 1]);
    }
  }
  out.push({ ...q, refs });
}
process.stdout.write(JSON.stringify(out));
