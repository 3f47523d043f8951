// Validates every Kubernetes object in the YAML files of a directory against
// the Kubernetes JSON schemas shipped by the kubernetes-models package
// (generated from the Kubernetes OpenAPI spec, checked with ajv), and checks
// that kustomization.yaml lists exactly the manifest files present.
// Usage: node validate-manifests.mjs DIR   (exit 1 on any error)
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const dir = process.argv[2];
if (!dir) {
  console.error("usage: node validate-manifests.mjs DIR");
  process.exit(2);
}

// apiVersion "apps/v1" -> kubernetes-models/apps/v1/<Kind>; core "v1" -> v1/<Kind>.
function modelFor(apiVersion, kind) {
  const path = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    return require(path)[kind];
  } catch (err) {
    throw new Error(`no schema for ${apiVersion} ${kind} (${err.code || err.message})`);
  }
}

let errors = 0;
let objects = 0;
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
const manifests = [];
for (const file of files) {
  const text = readFileSync(join(dir, file), "utf8");
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      console.error(`${file}: YAML error: ${doc.errors[0].message}`);
      errors++;
      continue;
    }
    const obj = doc.toJSON();
    if (obj == null) continue;
    if (obj.kind === "Kustomization") continue;
    manifests.push(file);
    objects++;
    try {
      const Model = modelFor(obj.apiVersion, obj.kind);
      new Model(obj).validate();
      console.log(`ok   ${file}: ${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`);
    } catch (err) {
      console.error(`FAIL ${file}: ${obj.apiVersion} ${obj.kind}: ${err.message}`);
      errors++;
    }
  }
}

// kustomization.yaml: every resource exists and every manifest is listed.
const kustomization = parseAllDocuments(readFileSync(join(dir, "kustomization.yaml"), "utf8"))[0].toJSON();
const listed = new Set(kustomization.resources || []);
for (const file of new Set(manifests)) {
  if (!listed.has(file)) {
    console.error(`FAIL kustomization.yaml does not list ${file}`);
    errors++;
  }
}
for (const res of listed) {
  if (!files.includes(res)) {
    console.error(`FAIL kustomization.yaml lists missing ${res}`);
    errors++;
  }
}
console.log(`${objects} objects, ${errors} errors`);
process.exit(errors ? 1 : 0);
