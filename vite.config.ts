import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  // Pre-bundle what the app and its worker import, so the first visit after `npm start` is not reloaded when Vite
  // discovers the worker's dependencies (a click on "Try the demo" in the first seconds would be lost).
  optimizeDeps: {
    include: [
      'react',
      'react-dom/client',
      'recharts',
      'zustand',
      'papaparse',
      'idb',
      'hyparquet',
      'fflate',
      '@huggingface/tokenizers',
      '@huggingface/jinja',
      '@jax-js/jax',
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-backend-webgpu',
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Dawn on SwiftShader is CPU-bound: two cores, two test files at a time.
    maxWorkers: 2,
  },
});
