import { LRUCache } from "lru-cache";

/**
 * An LRU cache of at most `entries` entries (the least recently used goes
 * first) that allocates as it fills. lru-cache's `max` allocates storage for
 * every entry when the cache is made (its README, "Storage Bounds Safety"):
 * 100 000 entries with a TTL were 4.4 MB of an idle pod's heap. `maxSize`
 * with every entry of size 1 keeps the same bound without that, at a small
 * cost per `set`. `options` are lru-cache's others (ttl, perf, ttlResolution).
 */
export function boundedCache<K extends {}, V extends {}>(
  entries: number,
  options: Pick<LRUCache.Options<K, V, unknown>, "ttl" | "perf" | "ttlResolution"> = {},
): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: entries, sizeCalculation: () => 1 });
}
