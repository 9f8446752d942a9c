// dxhub web app build: `npm run build` → dist/, which dxhub serves at `/`.
// cornerstone3D's image loader decodes in module web workers and loads its codecs
// (WebAssembly) from them: workers are ES modules, and the loader is not pre-bundled.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  worker: { format: "es" },
  optimizeDeps: {
    exclude: ["@cornerstonejs/dicom-image-loader"],
    include: ["dicom-parser"],
  },
  build: { outDir: "dist", sourcemap: false, target: "es2022", chunkSizeWarningLimit: 4096 },
});
