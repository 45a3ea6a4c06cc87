/**
 * Entry point of dist/walk-worker.js, the worker thread of the parallel counting walk
 * (parallel.ts): a separate bundle, so that a worker loads only what it runs and never the CLI.
 */
import { runWalkWorker } from './parallel';

runWalkWorker();
