// The one crontab line that runs `chasqui sync` unattended: its schedule, its text, and editing a
// crontab so that it holds exactly one such line per CHASQUI_HOME and nothing else changes.
import { parseDuration } from "./duration.ts";
import { shellQuote } from "./layout.ts";

/** How often, as given to `cron install --every`: 30m, 2h. */
export interface Every {
  minutes: number;
}

/** "30m", "2h" → minutes; null when cron cannot run it at that spacing. */
export function parseEvery(text: string): Every | null {
  const seconds = parseDuration(text);
  if (seconds === null || seconds % 60 !== 0) return null;
  const minutes = seconds / 60;
  // A cron schedule repeats within the hour (N dividing 60) or within the day (H dividing 24).
  if (minutes < 60 && 60 % minutes === 0) return { minutes };
  if (minutes % 60 === 0 && 24 % (minutes / 60) === 0) return { minutes };
  return null;
}

/** What `--every` accepts, for error messages. */
export const EVERY_FORMS =
  "minutes dividing an hour (5m, 10m, 15m, 20m, 30m) or hours dividing a day (1h, 2h, 3h, 4h, 6h, 12h, 24h)";

/**
 * The schedule's five fields. The minute is spread by `seed` (the home folder) so that the users
 * of one site do not all log in at :00.
 */
function cronSchedule(every: Every, seed: string): string {
  let h = 0;
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  if (every.minutes < 60) {
    const offset = h % every.minutes;
    return `${offset}-59/${every.minutes} * * * *`;
  }
  const hours = every.minutes / 60;
  return `${h % 60} ${hours === 24 ? h % 24 : `*/${hours}`} * * *`;
}

/** The comment that marks chasqui's line for one home (a crontab may hold one per home). */
function cronMarker(home: string): string {
  // Part of the command as far as cron is concerned: a raw % there would cut the line too.
  return `# chasqui sync for ${home.replaceAll("%", "\\%")}`;
}

// cron turns an unescaped % in the command into a newline; no line of ours may contain one raw.
function cronWord(word: string): string {
  return shellQuote(word).replaceAll("%", "\\%");
}

/** The whole line: every path absolute and quoted, output appended to the home's sync.log. */
export function cronLine(opts: { every: Every; home: string; command: readonly string[] }): string {
  const log = `${opts.home}/sync.log`;
  const run = [...opts.command, "sync", "--cron"].map(cronWord).join(" ");
  // umask: sync.log is created by the shell's redirection, and is as private as the rest of the home.
  return `${cronSchedule(opts.every, opts.home)} umask 077; CHASQUI_HOME=${cronWord(opts.home)} ${run} >>${cronWord(log)} 2>&1 ${cronMarker(opts.home)}`;
}

/** chasqui's line for this home in a crontab's text, or null. */
export function findCronLine(crontab: string, home: string): string | null {
  return crontab.split("\n").find((l) => l.endsWith(cronMarker(home))) ?? null;
}

/** The crontab with exactly `line` as chasqui's line for `home` (in place of an older one). */
export function withCronLine(crontab: string, home: string, line: string): string {
  const lines = crontab === "" ? [] : crontab.replace(/\n$/, "").split("\n");
  const at = lines.findIndex((l) => l.endsWith(cronMarker(home)));
  const others = lines.filter((l) => !l.endsWith(cronMarker(home)));
  others.splice(at < 0 ? others.length : at, 0, line);
  return `${others.join("\n")}\n`;
}

/** The crontab without chasqui's line for `home`; everything else byte for byte. */
export function withoutCronLine(crontab: string, home: string): string {
  const lines = crontab.split("\n");
  return lines.filter((l) => !l.endsWith(cronMarker(home))).join("\n");
}
