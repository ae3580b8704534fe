/** Bundles `workflows/` once, for tests and production images (`npm run bundle`). */
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export async function bundleWorkflowsTo(file: string): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    // Must match the data converter of workers using this bundle (lib/codec.ts).
    failureConverterPath: require.resolve('../workflows/failure-converter'),
    workflowInterceptorModules: [require.resolve('../workflows/request-id-interceptors')],
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never,
  });
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, code);
  return file;
}

if (require.main === module) {
  const out = process.argv[2] || path.resolve(__dirname, '..', 'dist', 'workflow-bundle.js');
  bundleWorkflowsTo(out).then((f) => console.log(`workflow bundle written to ${f}`));
}
