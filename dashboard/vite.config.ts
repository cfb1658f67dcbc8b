/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build lands inside the Python package, which serves it from `blitz serve`.
// `npm run dev` proxies the API to a daemon on BLITZ_API (default http://127.0.0.1:8765).
const api = process.env.BLITZ_API ?? "http://127.0.0.1:8765";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../blitz/server/static",
    emptyOutDir: true,
    chunkSizeWarningLimit: 700,
  },
  server: {
    proxy: { "/api": { target: api, changeOrigin: false, ws: true } }, // ws: the voice socket
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
