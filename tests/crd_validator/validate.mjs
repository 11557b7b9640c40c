// Validates custom resources (a JSON array of objects on stdin, e.g. `kustomize build` output) with validators
// generated from the operators' own CustomResourceDefinitions (kubernetes-models: Strimzi and CloudNativePG).
// Prints one line per custom resource; exit 1 when any is invalid or of a group/version/kind the CRDs do not define.
// Objects of other groups (the Kubernetes built-ins) are skipped: kubernetes-validate checks those.
import { readFileSync } from "node:fs";

const packages = {
  "kafka.strimzi.io": "@kubernetes-models/strimzi-kafka-operator",
  "core.strimzi.io": "@kubernetes-models/strimzi-kafka-operator",
  "postgresql.cnpg.io": "@kubernetes-models/cloudnative-pg",
};

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const object of objects) {
  const [group, version] = String(object.apiVersion ?? "").split("/");
  const name = `${object.kind}/${object.metadata?.name ?? "?"}`;
  if (!(group in packages)) continue;
  let models;
  try {
    models = await import(`${packages[group]}/${group}/${version}`);
  } catch {
    console.log(`invalid ${name}: ${object.apiVersion} is not a version the ${group} CRDs define`);
    failed += 1;
    continue;
  }
  const Model = models[object.kind];
  if (typeof Model !== "function") {
    console.log(`invalid ${name}: ${object.apiVersion} defines no kind ${object.kind}`);
    failed += 1;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`valid ${object.apiVersion} ${name}`);
  } catch (error) {
    console.log(`invalid ${object.apiVersion} ${name}: ${error.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
