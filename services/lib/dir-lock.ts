// One process owns a data folder: a lock file in it, created exclusively,
// naming the owner's pid. A lock whose process is gone (SIGKILL, a crash, a
// power cut) is stale and taken over at once, so a restart never waits.
//
// Why not a library: proper-lockfile and lockfile judge staleness by mtime,
// which refuses a restart after a crash for the whole stale period (10 s and
// more) and needs a timer touching the file; the pid-based packages on npm
// (pidlockfile, npid) are small and unmaintained. This is the ~100 lines we need.
import { randomBytes } from "node:crypto";
import { existsSync, linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** The lock file's name inside the folder it guards. */
const LOCK_FILE = "parley.lock";

/** What the lock file holds: who owns the folder. */
interface Owner {
  pid: number;
  /** The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for the owner. */
  start?: string;
  host: string;
  /** Tells this process's own locks apart from a dead process that had the same pid (pid 1 in a container). */
  token: string;
}

/** Thrown when a live process owns the folder; the message names the folder and the owner. */
export class FolderLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly ownerPid: number,
  ) {
    super(`data folder ${dir} is in use by another Parley process (pid ${ownerPid}); stop it, or set PARLEY_DATA_DIR to another folder`);
    this.name = "FolderLockedError";
  }
}

export interface FolderLock {
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/** Tokens of the locks this process holds. */
const held = new Set<string>();

/** The start time of `pid` from /proc (field 22 of stat), or undefined off Linux or when it is gone. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isAlive(owner: Owner): boolean {
  if (owner.pid === process.pid) return held.has(owner.token);
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const start = startTimeOf(owner.pid);
  return owner.start === undefined || start === undefined || start === owner.start;
}

function readOwner(path: string): Owner | undefined {
  try {
    const owner = JSON.parse(readFileSync(path, "utf8")) as Owner;
    return Number.isSafeInteger(owner.pid) && owner.pid > 0 ? owner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates the lock file only if there is none (false when one exists). It is
 * written in full under another name first and then linked into place, so a
 * lock file is never seen half-written.
 */
function tryCreate(path: string, owner: Owner): boolean {
  const draft = `${path}.${owner.token}`;
  writeFileSync(draft, JSON.stringify(owner), { flag: "wx" });
  try {
    linkSync(draft, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    unlinkSync(draft);
  }
}

/**
 * Takes the lock file `parley.lock` in `dir` (which must exist) for this
 * process, before anything else touches the folder. A live owner (another
 * process, or this one through another open) makes it throw
 * `FolderLockedError` having changed nothing; a lock left by a dead process is
 * taken over. A lock file that cannot be read counts as stale.
 */
export function lockFolder(dir: string): FolderLock {
  const path = join(dir, LOCK_FILE);
  const start = startTimeOf(process.pid);
  const me: Owner = { pid: process.pid, ...(start === undefined ? {} : { start }), host: hostname(), token: randomBytes(8).toString("hex") };
  for (let attempt = 0; attempt < 5; attempt++) {
    // Read first: a folder with a live owner is refused without writing anything in it.
    const owner = readOwner(path);
    if (owner !== undefined && isAlive(owner)) throw new FolderLockedError(dir, owner.pid);
    if (owner !== undefined || existsSync(path)) removeStale(path, owner);
    if (tryCreate(path, me)) {
      held.add(me.token);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          held.delete(me.token);
          if (readOwner(path)?.token === me.token) unlinkSync(path);
        },
      };
    }
  }
  throw new FolderLockedError(dir, readOwner(path)?.pid ?? 0);
}

/**
 * Moves the stale lock aside (rename is atomic) and deletes it. If another
 * process took the folder over between our read and the rename, what we moved
 * is its live lock: it goes back (link does not overwrite), and the next
 * attempt finds that owner alive.
 */
function removeStale(path: string, seen: Owner | undefined): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const moved = readOwner(aside);
  if (moved !== undefined && moved.token !== seen?.token) {
    try {
      linkSync(aside, path);
    } catch {
      // Someone else holds the path now; the next attempt reads that owner.
    }
  }
  unlinkSync(aside);
}
