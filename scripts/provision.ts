/** `npm run provision`: find or install the Temporal CLI and test server; print their paths. */
import { provisionTemporal } from '../lib/temporal-binaries';

const bins = provisionTemporal();
console.log(JSON.stringify(bins, null, 2));
if (!bins.cli || !bins.testServer) process.exit(1);
