/** Runs `fn` over `items` with at most `limit` in flight; the first rejection rejects the whole. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      while (!failed && next < items.length) {
        const i = next++;
        try {
          results[i] = await fn(items[i]!, i);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    }),
  );
  return results;
}
