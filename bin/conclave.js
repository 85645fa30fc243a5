#!/usr/bin/env node
// The installed entry: register tsx's loader in this process, then run the TypeScript CLI
// (no build step at run time, and signals reach the controller directly).
import { register } from 'tsx/esm/api';

register();
await import('../runtime/cli/main.ts');
