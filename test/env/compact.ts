/**
 * Compacts etcd's history up to now the way another kube-apiserver would: record the revision in
 * compact_rev_key, then compact. kube-apiserver's watch cache polls that key (every 15 s) and drops
 * its list snapshots older than it: a continue token from before then really expires, and pages
 * of a list that started before then are read from etcd, not from the cache.
 */
export async function compactEtcd(etcdUrl: string): Promise<number> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const head = await fetch(`${etcdUrl}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: b64("/crd-backup-test/compact"), value: "" }),
  });
  const now = Number(((await head.json()) as { header: { revision: string } }).header.revision);
  const put = await fetch(`${etcdUrl}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: b64("compact_rev_key"), value: b64(String(now)) }),
  });
  const revision = Number(((await put.json()) as { header: { revision: string } }).header.revision);
  const res = await fetch(`${etcdUrl}/v3/kv/compaction`, {
    method: "POST",
    body: JSON.stringify({ revision, physical: true }),
  });
  if (!res.ok) throw new Error(`compaction failed: ${res.status} ${await res.text()}`);
  return revision;
}
