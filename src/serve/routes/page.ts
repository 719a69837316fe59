import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { CelebaGanError } from '../../errors.js';
import { celebaGanRoot } from '../../util/package-root.js';

/** The page (web/public + its compiled script) and onnxruntime-web's wasm files, read from their folders only. */

function packageRoot(): string {
  const root = celebaGanRoot();
  if (root === null)
    throw new CelebaGanError('E_PAGE_NOT_BUILT', 'the celeba-gan package root (its package.json) was not found above src/serve', {
      hint: 'Run celeba-gan from its installed package or a full clone.',
    });
  return root;
}

function pageDirs(): { public: string; compiled: string } {
  const root = packageRoot();
  return Object.freeze({
    /** index.html, style.css */
    public: join(root, 'web', 'public'),
    /** the page's compiled TypeScript (npm run build:web) */
    compiled: join(root, 'dist', 'web'),
  });
}

function onnxruntimeWebDir(): string {
  return dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
}

export async function registerPageRoutes(app: FastifyInstance): Promise<void> {
  const dirs = pageDirs();
  const main = join(dirs.compiled, 'web', 'src', 'main.js');
  if (!existsSync(main)) {
    throw new CelebaGanError('E_PAGE_NOT_BUILT', `the web page is not built (${main} is missing)`, {
      hint: 'Run `npm run build` (it compiles the page with `tsc -p web`).',
    });
  }
  await app.register(fastifyStatic, { root: dirs.public, prefix: '/', index: 'index.html', wildcard: false });
  await app.register(fastifyStatic, { root: dirs.compiled, prefix: '/app/', decorateReply: false, allowedPath: (path) => path.endsWith('.js') });
  await app.register(fastifyStatic, {
    root: onnxruntimeWebDir(),
    prefix: '/ort/',
    decorateReply: false,
    allowedPath: (path) => /^\/ort[\w.-]*\.(mjs|wasm|js)$/.test(path),
  });
}
