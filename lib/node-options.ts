/**
 * Node options the API process runs with where it is deployed on its own (docker-compose.yml's `api`
 * service sets them as NODE_OPTIONS; bench/api-overhead.ts forks the bench's API process with the same).
 *
 * `--max-semi-space-size=64` (MB): a larger young generation, so the many short-lived objects of each
 * request (HTTP parsing, validation, the log line, the gRPC call) mostly die before a scavenge runs.
 * Measured on figure 3 (docs/PERFORMANCE.md, tuning log of 2026-12-05): the API process's CPU per
 * check-in 2.08 → 1.93 ms (−7 %), four runs against five; 32 MB gave about half of that. The cost is
 * memory: the young generation may grow to 2 × 64 MB.
 */
export const API_NODE_OPTIONS = '--max-semi-space-size=64';
