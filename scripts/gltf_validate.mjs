// Validate glTF files with Khronos' glTF-Validator (npm package gltf-validator).
// Usage: node scripts/gltf_validate.mjs VALIDATOR_DIR FILE...  Prints one JSON line per file
// ({"file", "errors", "warnings", "messages"}); exit code 1 when any file has errors.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const [dir, ...files] = process.argv.slice(2);
const require = createRequire(path.resolve(dir, "node_modules", "x.js"));
const validator = require("gltf-validator");
let bad = 0;
for (const file of files) {
  const data = new Uint8Array(await readFile(file));
  const report = await validator.validateBytes(data, {
    uri: file,
    externalResourceFunction: (uri) => readFile(path.resolve(path.dirname(file), decodeURIComponent(uri)))
      .then((b) => new Uint8Array(b)),
  });
  const msgs = report.issues.messages.filter((m) => m.severity <= 1)
    .map((m) => `${m.severity === 0 ? "error" : "warning"} ${m.code} ${m.pointer || ""}: ${m.message}`);
  console.log(JSON.stringify({ file, errors: report.issues.numErrors, warnings: report.issues.numWarnings,
                               messages: msgs.slice(0, 8) }));
  if (report.issues.numErrors > 0) bad += 1;
}
process.exit(bad ? 1 : 0);
