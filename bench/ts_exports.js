// The exported declarations of TypeScript files, listed by the TypeScript compiler's own parser: the
// independent reference bench/changes_accuracy.py compares `devcopilot changes` with for TypeScript.
//
//   node bench/ts_exports.js TYPESCRIPT_MODULE_DIR ROOT FILE...  ->  JSON {"path::name": {kind, signature}}
//
// Exported: a top-level function, class, interface, type alias, enum or variable with the `export`
// modifier (declare or not), and `export default` ones. Members: a public method of an exported class
// or accessor (get/set) of an exported class (not private, protected, #name or _name) and a method
// signature of an exported interface, named Class.method. The signature compared: a function's parameters (name, type, default, ?, ...) and
// return type; a class's constructor parameters, heritage and property declarations; the text of an
// interface, type alias or enum, comments left out.
"use strict";
const fs = require("fs");
const path = require("path");
const ts = require(path.join(process.argv[2], "lib", "typescript.js"));
const root = process.argv[3];

function exported(node) {
  const flags = ts.getCombinedModifierFlags(node);
  return (flags & ts.ModifierFlags.Export) !== 0 || (flags & ts.ModifierFlags.Default) !== 0;
}

function hidden(member, name) {
  const flags = ts.getCombinedModifierFlags(member);
  return (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) !== 0
    || name.startsWith("#") || name.startsWith("_");
}

function plain(node, file) {
  // The node's text with comments dropped and spacing collapsed, as printed by the compiler.
  const printer = ts.createPrinter({ removeComments: true });
  return printer.printNode(ts.EmitHint.Unspecified, node, file).replace(/\s+/g, " ").trim();
}

function params(fn, file) {
  return (fn.parameters || []).map((p) => ({
    name: p.name.getText(file),
    type: p.type ? p.type.getText(file) : "",
    default: p.initializer ? p.initializer.getText(file) : "",
    optional: !!p.questionToken || !!p.initializer,
    rest: !!p.dotDotDotToken,
  }));
}

function callable(fn, file) {
  return { params: params(fn, file), returns: fn.type ? fn.type.getText(file) : "" };
}

function listFile(rel, out) {
  const text = fs.readFileSync(path.join(root, rel), "utf8");
  const file = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true);
  const add = (name, kind, signature) => { out[`${rel}::${name}`] = { kind, signature }; };
  for (const st of file.statements) {
    if (!exported(st)) continue;
    if (ts.isFunctionDeclaration(st) && st.name) {
      add(st.name.text, "function", callable(st, file));
    } else if (ts.isClassDeclaration(st) && st.name) {
      const cls = st.name.text;
      let ctor = [];
      const props = [];
      for (const m of st.members) {
        const name = m.name ? m.name.getText(file) : "";
        if (ts.isConstructorDeclaration(m)) ctor = params(m, file);
        else if ((ts.isMethodDeclaration(m) || ts.isMethodSignature(m)) && !hidden(m, name)) {
          add(`${cls}.${name}`, "method", callable(m, file));
        } else if ((ts.isGetAccessor(m) || ts.isSetAccessor(m)) && !hidden(m, name)) {
          const prev = out[`${rel}::${cls}.${name}`];  // a getter and its setter are one member
          add(`${cls}.${name}`, "accessor", (prev ? prev.signature + " " : "") + plain(m, file));
        } else if (ts.isPropertyDeclaration(m) && !hidden(m, name)) props.push(plain(m, file));
      }
      const heritage = (st.heritageClauses || []).map((h) => h.getText(file)).join(" ");
      add(cls, "class", { params: ctor, heritage, props });
    } else if (ts.isInterfaceDeclaration(st)) {
      add(st.name.text, "interface", plain(st, file));
      for (const m of st.members) {
        if (ts.isMethodSignature(m) && m.name) add(`${st.name.text}.${m.name.getText(file)}`, "method", callable(m, file));
      }
    } else if (ts.isTypeAliasDeclaration(st)) {
      add(st.name.text, "type", plain(st, file));
    } else if (ts.isEnumDeclaration(st)) {
      add(st.name.text, "enum", plain(st, file));
    } else if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) {
        const init = d.initializer;
        if (init && (ts.isArrowFunction(init) || ts.isFunctionExpression(init))) {
          add(d.name.getText(file), "function", callable(init, file));
        } else {
          add(d.name.getText(file), "variable", d.type ? d.type.getText(file) : plain(d, file));
        }
      }
    }
  }
}

const out = {};
for (const rel of process.argv.slice(4)) listFile(rel, out);
process.stdout.write(JSON.stringify(out));
