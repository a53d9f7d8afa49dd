import t from 'tap';
import { fuzzRoutes } from './fuzz.js';

// Every route fuzzed from its OpenAPI schema: see fuzz.ts. This file takes share 2 of 3.
fuzzRoutes(t, 1, 3);
