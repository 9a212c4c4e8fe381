// Copies the widget's self-contained UMD bundle next to the web service's static files, so the
// webchat page loads it from our own origin (CSP script-src 'self', no CDN at run time).
// The copy is a build output: it is ignored by git and recreated by `npm run build`.
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, "node_modules/rasa-webchat/lib/index.js");
const target = resolve(here, "../cartguard/webapp/static/vendor/webchat.js");

try {
  statSync(source);
} catch {
  console.error(`rasa-webchat is not installed (${source} missing): run "npm ci" in web/ first`);
  process.exit(1);
}
mkdirSync(dirname(target), { recursive: true });
copyFileSync(source, target);
console.log(`webchat bundle copied to ${target} (${statSync(target).size} bytes)`);
