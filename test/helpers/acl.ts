/** ACL LOG, read the way the tests ask about it. */
import type { Redis } from 'ioredis';

/** The entries of ACL LOG (newest first), each as a map of its fields. */
export async function aclLog(admin: Redis): Promise<Map<string, unknown>[]> {
  const log = (await admin.acl('LOG')) as unknown[][];
  return log.map((entry) => {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
    return fields;
  });
}

/** ACL LOG entries (denials) for `user`, as "context:object". */
export async function denials(admin: Redis, user: string): Promise<string[]> {
  return (
    (await aclLog(admin))
      .filter((f) => f.get('username') === user)
      .map((f) => `${String(f.get('context'))}:${String(f.get('object'))}`)
      // ioredis sends CLIENT SETINFO (Redis 7.2+) when it connects and ignores a refusal.
      .filter((d) => d !== 'toplevel:client|setinfo')
  );
}
