import t from 'tap';
import { fuzzRoutes } from './fuzz.js';

// Every route fuzzed from its OpenAPI schema: see fuzz.ts. This file takes share 1 of 3.
fuzzRoutes(t, 0, 3);
