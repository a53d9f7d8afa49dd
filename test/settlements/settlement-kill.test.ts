import t from 'tap';
import { settlementKillScenario } from './settlement-kill.js';

// SIGKILL mid-settlement with the queues in Redis (settlement-kill.ts has the scenario).

t.test('SIGKILL mid-settlement: nothing is written, and the next worker pays everyone exactly once', (t) =>
  settlementKillScenario(t, 'redis'),
);
