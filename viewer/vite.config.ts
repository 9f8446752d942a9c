// dxhub web app build: `npm run build` → dist/, which dxhub serves at `/`.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { outDir: "dist", sourcemap: false, target: "es2020" },
});
