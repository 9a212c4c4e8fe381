// Builds the local copy of the rasa-webchat widget that the web service serves from our own
// origin (CSP script-src 'self', no CDN at run time). The copy is a build output: it is ignored
// by git and recreated by `make web` (or `npm run build` here).
//
// rasa-webchat 1.0.1's bundle asks Google Fonts for an "Inter" stylesheet from each of its CSS
// modules (`@import url(https://fonts.googleapis.com/css?family=Inter...)`). A shop page with
// personal data must not make outside requests (our CSP blocks it: a console error on every
// page), so the copy drops those imports and uses the shop page's system font stack instead of
// Inter. The build fails if the bundle still points at any outside stylesheet or font, e.g.
// after a widget upgrade changed the text we replace.
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, "node_modules/rasa-webchat/lib/index.js");
const target = resolve(here, "../cartguard/webapp/static/vendor/webchat.js");

// the same stack as cartguard/webapp/static/site.css (unquoted: the CSS sits in JS strings)
const SYSTEM_FONTS = "system-ui,-apple-system,Segoe UI,Roboto,sans-serif";
const GOOGLE_FONTS_IMPORT = /@import url\(["']?https:\/\/fonts\.googleapis\.com\/[^)]*\);?/g;
const INTER = /font-family:\s*Inter\s*,\s*sans-serif/g;
const OUTSIDE_STYLE = /@import\s+url\(\s*["']?(https?:)?\/\/|fonts\.googleapis\.com|fonts\.gstatic\.com/;

let bundle;
try {
  bundle = readFileSync(source, "utf8");
} catch {
  console.error(`rasa-webchat is not installed (${source} missing): run "npm ci" in web/ first`);
  process.exit(1);
}

const imports = (bundle.match(GOOGLE_FONTS_IMPORT) || []).length;
const fonts = (bundle.match(INTER) || []).length;
const local = bundle.replace(GOOGLE_FONTS_IMPORT, "").replace(INTER, `font-family:${SYSTEM_FONTS}`);

// Every emit of the widget goes through one method of its socket wrapper; it hands them to
// cartguard/webapp/static/delivery.js, which names each message and sends again what the
// channel has not acknowledged (see that file). Exactly one such method, or the build fails.
const EMIT = 'key:"emit",value:function(e,t){this.socket&&this.socket.emit(e,t)}';
const DELIVERED_EMIT =
  'key:"emit",value:function(e,t){this.socket&&(window.CartguardDelivery?' +
  "window.CartguardDelivery.emit(this.socket,e,t):this.socket.emit(e,t))}";
const emits = local.split(EMIT).length - 1;
if (emits !== 1) {
  console.error(`expected the widget's socket emit method once, found it ${emits} times; ` +
    "update web/build.mjs for this rasa-webchat version");
  process.exit(1);
}
const delivered = local.replace(EMIT, DELIVERED_EMIT);

const left = delivered.match(OUTSIDE_STYLE);
if (left) {
  console.error(`the widget bundle still loads an outside stylesheet or font (${left[0]}); ` +
    "update web/build.mjs for this rasa-webchat version");
  process.exit(1);
}

mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, delivered);
console.log(
  `webchat bundle written to ${target} (${statSync(target).size} bytes; ` +
  `${imports} Google Fonts imports removed, ${fonts} Inter fonts set to the system stack, ` +
  "emits handed to delivery.js)"
);
