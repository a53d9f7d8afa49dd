import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { withServices, type Config, type Settings } from './config.js';
import { lockDataFolder, type DataFolderLock } from './infra/data-folder-lock.js';
import { EmbeddedPostgres } from './infra/embedded-postgres.js';
import { readOrCreateSecret } from './infra/stored-secret.js';

// Embedded mode: `npm start` on a machine with nothing but Node. Without DATABASE_URL the service
// keeps everything in DATA_DIR: an exclusive lock (one service per folder), its own PostgreSQL,
// and a JWT secret generated once. With DATABASE_URL none of this runs.

const DATABASE = 'circle_actions';

export class EmbeddedMode {
  private lock: DataFolderLock | null = null;
  private postgres: EmbeddedPostgres | null = null;
  readonly dataDir: string;

  constructor(
    private readonly settings: Settings,
    private readonly log: Logger,
    /** Called if the embedded server stops while the service still needs it. */
    private readonly onServerLost: () => void = () => {},
  ) {
    this.dataDir = resolve(settings.dataDir);
  }

  /** Takes the folder, starts the server; returns the configuration completed with them. */
  async start(): Promise<Config> {
    const { dataDir, log } = this;
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    this.lock = await lockDataFolder(dataDir);
    if (this.lock.tookOverFrom)
      log.warn({ previousPid: this.lock.tookOverFrom.pid }, 'took over the data folder from a process that is gone');

    this.postgres = new EmbeddedPostgres({ dataDir, database: DATABASE, log, onUnexpectedExit: this.onServerLost });
    const server = await this.postgres.start();
    log.info(
      { dataDir, port: server.port, connection: this.postgres.statePath },
      `DATABASE_URL is not set: embedded PostgreSQL on 127.0.0.1:${server.port} with its data in ${dataDir}` +
        ` (its connection URL is in ${this.postgres.statePath}). For your own services set DATABASE_URL` +
        ' (and REDIS_URL, JWT_SECRET); see README "Production"',
    );

    let jwtSecret: string | undefined;
    if (!this.settings.jwt.secret) {
      const path = join(dataDir, 'jwt-secret');
      const stored = await readOrCreateSecret(path);
      jwtSecret = stored.secret;
      log.info(
        { path },
        stored.created
          ? `JWT_SECRET is not set: generated one in ${path}`
          : `JWT_SECRET is not set: using the one generated earlier in ${path}`,
      );
    }
    return withServices(this.settings, { databaseUrl: server.databaseUrl, jwtSecret });
  }

  /** Stops the server, then frees the folder. Safe at any point, also during start(). */
  async stop(): Promise<void> {
    await this.postgres?.stop();
    await this.lock?.release();
  }

  /** For process 'exit': signals the server to stop (it finishes on its own) and frees the folder. */
  stopNow(): void {
    this.postgres?.stopNow();
    this.lock?.releaseSync();
  }
}
