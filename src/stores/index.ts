/**
 * Opens the app's user store from its URL: `sqlite:<path>` (or a path ending in `.db`/`.sqlite`)
 * for the embedded default, `postgres://…`/`postgresql://…` for PostgreSQL.
 */
import { openPostgresStore } from './postgres';
import { openSqliteStore } from './sqlite';
import { DEFAULT_MAPPING, UserStoreError, type StoreMapping, type UserStore } from './user-store';

export * from './user-store';

export function openUserStore(url: string, mapping: StoreMapping = DEFAULT_MAPPING): UserStore {
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgresStore(url, mapping);
  if (url.startsWith('sqlite:')) return openSqliteStore(url.slice('sqlite:'.length), mapping);
  if (/\.(db|sqlite3?)$/.test(url)) return openSqliteStore(url, mapping);
  throw new UserStoreError(`unknown user store URL ${JSON.stringify(url)}: use sqlite:<path> or postgres://…`, false);
}
