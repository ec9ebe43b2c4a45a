/**
 * The embedded default store: SQLite through `node-sqlite3-wasm`, SQLite compiled to WebAssembly
 * with a VFS over Node's `fs` (real files). It installs from the npm registry alone (no native
 * addon, no prebuilt binary download, no node-gyp); `sql.js` also does, but keeps the database in
 * memory and writes it out whole. Its VFS locks a database with a `<file>.lock` directory, so a
 * second process waits (SQLITE_BUSY, retried here) instead of sharing a file unsafely.
 */
import { rmdirSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Database } from 'node-sqlite3-wasm';
import { keptColumns, rowToUser, UserStoreError, type StoreChange, type StoreMapping, type StoredUser, type UserStore } from './user-store';

const BUSY_RETRY_MS = 10;
const BUSY_GIVE_UP_MS = 15_000;
/**
 * A lock held this long belongs to a process that died inside a statement (a SIGKILLed worker):
 * the VFS's `<file>.lock` directory has no owner to check, and our statements take milliseconds.
 */
export const STALE_LOCK_MS = 10_000;

/** Removes the database's lock directory when it is older than STALE_LOCK_MS; true when it did. */
function clearStaleLock(path: string): boolean {
  const lock = `${path}.lock`;
  try {
    if (Date.now() - statSync(lock).mtimeMs < STALE_LOCK_MS) return false;
    rmdirSync(lock);
    console.error(`SQLite store ${path}: removed a lock held for over ${STALE_LOCK_MS / 1000} s (a process died holding it)`);
    return true;
  } catch {
    return false; // gone already, or taken again meanwhile
  }
}

export function openSqliteStore(path: string, mapping: StoreMapping): UserStore {
  let db: Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw new UserStoreError(`cannot open SQLite store ${path}: ${(err as Error).message}`, false, { cause: err });
  }
  const m = mapping;
  const kept = keptColumns(m);
  const cols = [m.id, ...kept.map((k) => k.column)];

  /** Runs `fn` (synchronous SQL), retrying while another process holds the database. */
  const withDb = async <T>(fn: (d: Database) => T): Promise<T> => {
    const giveUpAt = Date.now() + BUSY_GIVE_UP_MS;
    for (;;) {
      try {
        return fn(db);
      } catch (err) {
        const busy = /busy|locked/i.test((err as Error).message);
        if (db.inTransaction) db.exec('ROLLBACK');
        if (busy && clearStaleLock(path)) continue;
        if (!busy || Date.now() > giveUpAt) throw new UserStoreError(`SQLite store ${path}: ${(err as Error).message}`, busy, { cause: err });
        await sleep(BUSY_RETRY_MS);
      }
    }
  };

  const values = (u: StoredUser) => [u.id, ...kept.map((k) => u[k.field])];

  return {
    kind: 'sqlite',
    ensureSchema: () =>
      withDb((d) => {
        const defs = kept.map((k) => `${k.column} ${k.field === 'updatedAt' ? 'INTEGER' : 'TEXT'}`);
        d.exec(`CREATE TABLE IF NOT EXISTS ${m.table} (${m.id} TEXT PRIMARY KEY${defs.map((x) => `, ${x}`).join('')})`);
        d.exec(`CREATE TABLE IF NOT EXISTS ${m.messagesTable} (svix_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL)`);
      }),
    getMany: (ids) =>
      withDb((d) => {
        const out = new Map<string, StoredUser>();
        for (let k = 0; k < ids.length; k += 500) {
          const chunk = ids.slice(k, k + 500);
          const rows = d.all(`SELECT ${cols.join(', ')} FROM ${m.table} WHERE ${m.id} IN (${chunk.map(() => '?').join(',')})`, chunk);
          for (const row of rows) {
            const u = rowToUser(row, m);
            out.set(u.id, u);
          }
        }
        return out;
      }),
    idsAfter: (after, limit) =>
      withDb((d) =>
        d
          .all(`SELECT ${m.id} AS id FROM ${m.table} WHERE ${m.id} > ? ORDER BY ${m.id} LIMIT ?`, [after ?? '', limit])
          .map((r) => String(r.id)),
      ),
    count: () => withDb((d) => Number(d.get(`SELECT count(*) AS n FROM ${m.table}`)?.n ?? 0)),
    all: () => withDb((d) => d.all(`SELECT ${cols.join(', ')} FROM ${m.table} ORDER BY ${m.id}`).map((r) => rowToUser(r, m))),
    apply: (change: StoreChange, messageId?: string) =>
      withDb((d) => {
        d.exec('BEGIN IMMEDIATE');
        if (messageId !== undefined) {
          const fresh = d.run(`INSERT INTO ${m.messagesTable} (svix_id, received_at) VALUES (?, ?) ON CONFLICT DO NOTHING`, [messageId, Date.now()]);
          if (fresh.changes === 0) {
            d.exec('ROLLBACK');
            return false;
          }
        }
        if (change.type === 'delete') d.run(`DELETE FROM ${m.table} WHERE ${m.id} = ?`, [change.id]);
        else {
          const sets = kept.map((k) => `${k.column} = excluded.${k.column}`).join(', ');
          // An older copy never replaces a newer one.
          const newer = m.updatedAt ? ` WHERE ${m.table}.${m.updatedAt} IS NULL OR excluded.${m.updatedAt} >= ${m.table}.${m.updatedAt}` : '';
          d.run(
            `INSERT INTO ${m.table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})` +
              (sets ? ` ON CONFLICT (${m.id}) DO UPDATE SET ${sets}${newer}` : ` ON CONFLICT (${m.id}) DO NOTHING`),
            values(change.user),
          );
        }
        d.exec('COMMIT');
        return true;
      }),
    load: (users) =>
      withDb((d) => {
        const sets = kept.map((k) => `${k.column} = excluded.${k.column}`).join(', ');
        d.exec('BEGIN IMMEDIATE');
        const insert = d.prepare(
          `INSERT INTO ${m.table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})` +
            (sets ? ` ON CONFLICT (${m.id}) DO UPDATE SET ${sets}` : ` ON CONFLICT (${m.id}) DO NOTHING`),
        );
        try {
          for (const u of users) insert.run(values(u));
        } finally {
          insert.finalize();
        }
        d.exec('COMMIT');
      }),
    close: async () => {
      if (db.isOpen) db.close();
    },
  };
}
