import t from 'tap';
import { settlementKillScenario } from './settlement-kill.js';

// SIGKILL mid-settlement with the queues in Postgres and no Redis (settlement-kill.ts has the
// scenario).

t.test('SIGKILL mid-settlement on the postgres queue backend: nothing is written, the next worker pays once', (t) =>
  settlementKillScenario(t, 'postgres'),
);
