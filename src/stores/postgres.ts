/**
 * The app's store in PostgreSQL, through `pg` (a pool). Same layout and rules as the SQLite store;
 * connection failures are retryable, SQL errors about the layout (a missing table or column) are not.
 */
import pg from 'pg';
import { keptColumns, rowToUser, UserStoreError, type StoreChange, type StoreMapping, type StoredUser, type UserStore } from './user-store';

/** SQLSTATE classes of a wrong layout or configuration: retrying will not help. */
const CONFIG_ERRORS = /^(42|28|3D)/;

export function openPostgresStore(url: string, mapping: StoreMapping): UserStore {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // An idle client losing its connection must not crash the worker; the next query reconnects.
  pool.on('error', () => undefined);
  const m = mapping;
  const kept = keptColumns(m);
  const cols = [m.id, ...kept.map((k) => k.column)];

  const q = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], client: pg.Pool | pg.PoolClient = pool) => {
    try {
      return await client.query<R>(sql, params);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      throw new UserStoreError(`PostgreSQL store: ${(err as Error).message}`, !CONFIG_ERRORS.test(code), { cause: err });
    }
  };

  return {
    kind: 'postgres',
    async ensureSchema() {
      const defs = kept.map((k) => `, ${k.column} ${k.field === 'updatedAt' ? 'BIGINT' : 'TEXT'}`).join('');
      await q(`CREATE TABLE IF NOT EXISTS ${m.table} (${m.id} TEXT PRIMARY KEY${defs})`);
      await q(`CREATE TABLE IF NOT EXISTS ${m.messagesTable} (svix_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL)`);
    },
    async getMany(ids) {
      const out = new Map<string, StoredUser>();
      if (ids.length === 0) return out;
      const res = await q(`SELECT ${cols.join(', ')} FROM ${m.table} WHERE ${m.id} = ANY($1::text[])`, [ids]);
      for (const row of res.rows) {
        const u = rowToUser(row, m);
        out.set(u.id, u);
      }
      return out;
    },
    async idsAfter(after, limit) {
      // COLLATE "C": byte order, the same as the cursor's comparison whatever the database's locale.
      const res = await q<{ id: string }>(
        `SELECT ${m.id} AS id FROM ${m.table} WHERE ${m.id} COLLATE "C" > $1 ORDER BY ${m.id} COLLATE "C" LIMIT $2`,
        [after ?? '', limit],
      );
      return res.rows.map((r) => r.id);
    },
    async count() {
      const res = await q<{ n: string }>(`SELECT count(*) AS n FROM ${m.table}`);
      return Number(res.rows[0]?.n ?? 0);
    },
    async all() {
      const res = await q(`SELECT ${cols.join(', ')} FROM ${m.table} ORDER BY ${m.id} COLLATE "C"`);
      return res.rows.map((r) => rowToUser(r, m));
    },
    async apply(change: StoreChange, messageId?: string) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw new UserStoreError(`PostgreSQL store: ${(err as Error).message}`, true, { cause: err });
      }
      try {
        await q('BEGIN', [], client);
        if (messageId !== undefined) {
          const fresh = await q(`INSERT INTO ${m.messagesTable} (svix_id, received_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [messageId, Date.now()], client);
          if (fresh.rowCount === 0) {
            await q('ROLLBACK', [], client);
            return false;
          }
        }
        if (change.type === 'delete') await q(`DELETE FROM ${m.table} WHERE ${m.id} = $1`, [change.id], client);
        else {
          const sets = kept.map((k) => `${k.column} = excluded.${k.column}`).join(', ');
          const newer = m.updatedAt ? ` WHERE ${m.table}.${m.updatedAt} IS NULL OR excluded.${m.updatedAt} >= ${m.table}.${m.updatedAt}` : '';
          const u = change.user;
          await q(
            `INSERT INTO ${m.table} (${cols.join(', ')}) VALUES (${cols.map((_, k) => `$${k + 1}`).join(', ')})` +
              (sets ? ` ON CONFLICT (${m.id}) DO UPDATE SET ${sets}${newer}` : ` ON CONFLICT (${m.id}) DO NOTHING`),
            [u.id, ...kept.map((k) => u[k.field])],
            client,
          );
        }
        await q('COMMIT', [], client);
        return true;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async load(users) {
      const sets = kept.map((k) => `${k.column} = excluded.${k.column}`).join(', ');
      const client = await pool.connect();
      try {
        await q('BEGIN', [], client);
        for (const u of users) {
          await q(
            `INSERT INTO ${m.table} (${cols.join(', ')}) VALUES (${cols.map((_, k) => `$${k + 1}`).join(', ')})` +
              (sets ? ` ON CONFLICT (${m.id}) DO UPDATE SET ${sets}` : ` ON CONFLICT (${m.id}) DO NOTHING`),
            [u.id, ...kept.map((k) => u[k.field])],
            client,
          );
        }
        await q('COMMIT', [], client);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
